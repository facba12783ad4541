// Package api decodes the JSON items the service accepts.
//
// Item keeps its attributes as interface{} values, as many services do: encoding/json then
// allocates every string and number it stores (decodeState.literalStore), which is what a
// heap profile of the service shows.
package api

import "encoding/json"

// Item is one posted object.
type Item struct {
	ID    string                 `json:"id"`
	Tags  map[string]interface{} `json:"tags"`
	Attrs []interface{}          `json:"attrs"`
	Note  interface{}            `json:"note"`
}

// Decode parses one item.
func Decode(body []byte) (*Item, error) {
	var it Item
	if err := json.Unmarshal(body, &it); err != nil {
		return nil, err
	}
	return &it, nil
}
