// Command yjsops applies party/yjs's update operations to requests read as
// JSON from stdin, so that interop/yjs/check.test.mjs can check the results
// with the npm yjs package. Input: a JSON array of requests
//
//	{"op": "merge", "updates": [base64…]}
//	{"op": "diff", "update": base64, "stateVector": base64}
//	{"op": "stateVector", "update": base64}
//
// Output: a JSON array with, for each request in order, {"result": base64}
// or {"error": message}.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"party/yjs"
)

type request struct {
	Op          string
	Updates     [][]byte
	Update      []byte
	StateVector []byte
}

type response struct {
	Result []byte `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

func main() {
	var reqs []request
	if err := json.NewDecoder(os.Stdin).Decode(&reqs); err != nil {
		fmt.Fprintln(os.Stderr, "yjsops: reading requests:", err)
		os.Exit(2)
	}
	out := make([]response, len(reqs))
	for i, r := range reqs {
		var err error
		switch r.Op {
		case "merge":
			out[i].Result, err = yjs.MergeUpdates(r.Updates...)
		case "diff":
			out[i].Result, err = yjs.DiffUpdate(r.Update, r.StateVector)
		case "stateVector":
			out[i].Result, err = yjs.EncodeStateVectorFromUpdate(r.Update)
		default:
			err = fmt.Errorf("unknown op %q", r.Op)
		}
		if err != nil {
			out[i].Error = err.Error()
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "yjsops: writing results:", err)
		os.Exit(1)
	}
}
