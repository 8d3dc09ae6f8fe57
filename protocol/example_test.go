package protocol_test

import (
	"fmt"

	"party/protocol"
)

// Text and binary messages stay apart, and the bytes are shared, not copied.
func ExampleMessage() {
	payload := []byte(`{"n":1}`)
	for _, m := range []protocol.Message{
		protocol.Text("hello"),
		protocol.TextBytes(payload),
		protocol.Binary([]byte{0xff, 0x00}),
	} {
		fmt.Printf("binary=%v %q\n", m.IsBinary(), m.Bytes())
	}
	fmt.Println(&protocol.TextBytes(payload).Bytes()[0] == &payload[0])
	// Output:
	// binary=false "hello"
	// binary=false "{\"n\":1}"
	// binary=true "\xff\x00"
	// true
}
