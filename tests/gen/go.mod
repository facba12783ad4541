module memgate/tests/gen

go 1.24
