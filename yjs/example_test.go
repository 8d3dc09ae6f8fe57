package yjs_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"

	"party"
	"party/yjs"
)

// Three updates a yjs client sent while typing "hi", then "!", then deleting
// the "h" (bytes from the npm yjs package).
var typed = [][]byte{
	mustHex("010101000401017402686900"), // insert "hi" into the root text "t"
	mustHex("01010102840101012100"),     // insert "!" after (1, 1)
	mustHex("000101010001"),             // delete (1, 0)
}

// A room keeps one update instead of many: merging gives what Y.mergeUpdates
// gives, and a client whose state vector says it has the first update gets
// only the rest.
func ExampleMergeUpdates() {
	merged, err := yjs.MergeUpdates(typed...)
	if err != nil {
		fmt.Println(err)
		return
	}
	sv, _ := yjs.EncodeStateVectorFromUpdate(typed[0])
	rest, _ := yjs.DiffUpdate(merged, sv)
	fmt.Printf("merged %x\nclient has %x\nit gets %x\n", merged, sv, rest)
	// Output:
	// merged 010201000401017402686984010101210101010001
	// client has 010102
	// it gets 0101010284010101210101010001
}

// A decoded update shows its structure: clients' runs of structs, then the
// delete set.
func ExampleDecodeUpdate() {
	merged, _ := yjs.MergeUpdates(typed...)
	u, err := yjs.DecodeUpdate(merged)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, run := range u.Clients {
		clock := run.Clock
		for _, s := range run.Structs {
			if it, ok := s.(*yjs.Item); ok {
				if text, ok := it.Content.(*yjs.ContentString); ok {
					fmt.Printf("client %d clock %d: %q\n", run.Client, clock, text.Text)
				}
			}
			clock += s.Len()
		}
	}
	fmt.Println("deleted:", u.Deletes)
	// Output:
	// client 1 clock 0: "hi"
	// client 1 clock 2: "!"
	// deleted: [{1 [{0 1}]}]
}

// A hostile or broken update is refused with ErrMalformed, saying where.
func ExampleValidateUpdate() {
	err := yjs.ValidateUpdate(mustHex("01010100040101747f"))
	fmt.Println(err)
	// Output:
	// yjs: malformed input: update: client 1 (run 1 of 1): struct 0 at clock 0: at byte 8: byte length 127 exceeds what the 0 bytes after it can hold
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// A Yjs room: y-websocket's WebsocketProvider (serverUrl
// ws://host/parties/main, room "notes") and y-partykit's YPartyKitProvider
// connect to it as they are. The app reads and writes the document through
// Host.Call, which starts the room (and loads its document) if needed.
func ExampleNewServer() {
	h := party.Handler(func(r *party.Room) party.Server {
		return yjs.NewServer(r, &yjs.Options{
			OnChange: func(doc []byte) { /* save doc elsewhere, 2 s after edits pause */ },
		})
	})
	mux := http.NewServeMux()
	mux.Handle("/parties/", h)

	ctx := context.Background()
	for _, u := range typed {
		err := h.Call(ctx, party.DefaultParty, "notes", func(s party.Server) error {
			return s.(*yjs.Server).Apply(u) // stored, then sent to every client
		})
		if err != nil {
			fmt.Println(err)
		}
	}
	var doc []byte
	h.Call(ctx, party.DefaultParty, "notes", func(s party.Server) (err error) {
		doc, err = s.(*yjs.Server).Document()
		return err
	})
	fmt.Printf("document %x\n", doc)
	h.Shutdown(ctx)
	// Output:
	// document 010201000401017402686984010101210101010001
}
