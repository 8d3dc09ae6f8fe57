package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
	"party/yjs"
)

// syncFrame is a y-protocols sync message: [0, sub, varUint8Array(payload)].
func syncFrame(sub uint64, payload []byte) []byte {
	b := binary.AppendUvarint([]byte{0}, sub)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// readSync reads frames until a sync message of kind sub, and returns its
// payload.
func (c *client) readSync(sub uint64) []byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for sync %d: %v", sub, err)
		}
		if len(data) < 2 || data[0] != 0 {
			continue // awareness, or another protocol
		}
		got, n := binary.Uvarint(data[1:])
		if n <= 0 || got != sub {
			continue
		}
		rest := data[1+n:]
		size, m := binary.Uvarint(rest)
		if m <= 0 || uint64(len(rest[m:])) != size {
			c.t.Fatalf("malformed sync frame %x", data)
		}
		return rest[m:]
	}
}

func (c *client) sendBinary(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageBinary, b); err != nil {
		c.t.Fatal(err)
	}
}

// TestYjsAcrossNodes: a Yjs document room (party/yjs, unchanged) with its
// clients on two nodes: an update from one reaches the other; then the
// room's node shuts down, and a client on a third node syncs the whole
// document from the room's new owner, which loaded it from the storage that
// followed the room.
func TestYjsAcrossNodes(t *testing.T) {
	ns := startServer(t, "")
	nodes := startNodes(t, ns, 3, 2*time.Second, func(r *party.Room) party.Server { return yjs.NewServer(r, nil) })
	a := dial(t, nodes[0], "doc", "a") // n1 runs the room
	b := dial(t, nodes[1], "doc", "b")
	hello := (&yjs.Update{Clients: []yjs.ClientStructs{{Client: 1, Clock: 0, Structs: []yjs.Struct{
		&yjs.Item{Parent: &yjs.Parent{IsRoot: true, Root: "t"}, Content: &yjs.ContentString{Text: "hello"}},
	}}}}).Encode()
	a.sendBinary(syncFrame(2, hello))
	if got := b.readSync(2); !bytes.Equal(got, hello) {
		t.Fatalf("b got update %x, want a's %x", got, hello)
	}

	a.conn.CloseNow() // (a client that does not read holds a Shutdown up for its close handshake)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[0].node.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b.expectClose(party.StatusServiceRestart)
	c := dial(t, nodes[2], "doc", "c")
	c.sendBinary(syncFrame(0, []byte{0})) // step 1 with an empty state vector: send me everything
	doc := c.readSync(1)
	want, err := yjs.MergeUpdates(hello)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, want) {
		t.Fatalf("the new owner's document %x, want %x", doc, want)
	}
}
