package cluster

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecode: any bytes another node (or anyone on the NATS subject) sends
// decode to a message or to an error, never a panic; a message encodes back
// to the same bytes; a broadcast's payload and a close status read without
// panicking.
func FuzzDecode(f *testing.F) {
	for _, e := range []envelope{
		{kind: kindJoin, token: 7, party: "main", room: "r%20x", from: "n1", seq: 3, payload: []byte(`{"id":"a"}`)},
		{kind: kindBroadcastText, token: 1 << 40, party: "p", room: "r", from: "n2", payload: append(broadcastPayload([]string{"a", "bb"}, nil), "hi"...)},
		{kind: kindLeave, party: "p", room: "r", from: "n3", seq: 1, payload: closeStatus(1000, "bye")},
		{kind: kindGone},
	} {
		f.Add(e.encode())
	}
	f.Add([]byte{})
	f.Add([]byte{byte(kindText), 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decode(data)
		if err != nil {
			return
		}
		if again := e.encode(); !bytes.Equal(again, data) {
			// Varints have one shortest form; a longer one decodes too and
			// encodes shorter: then the decoded message must be stable.
			e2, err := decode(again)
			if err != nil || !reflect.DeepEqual(e, e2) && !sameEnvelope(e, e2) {
				t.Fatalf("%x decodes to %+v, which encodes to %x, which decodes to %+v, %v", data, e, again, e2, err)
			}
		}
		readBroadcast(e.payload)
		readCloseStatus(e.payload)
	})
}

func sameEnvelope(a, b envelope) bool {
	return a.kind == b.kind && a.token == b.token && a.party == b.party && a.room == b.room && a.from == b.from &&
		a.seq == b.seq && bytes.Equal(a.payload, b.payload)
}

// TestEnvelopeRoundTrip: every kind survives encode and decode.
func TestEnvelopeRoundTrip(t *testing.T) {
	for k := kindJoin; k <= lastKind; k++ {
		e := envelope{kind: k, token: 42, party: "main", room: "room%2F1", from: "node-1", seq: 9, payload: []byte("payload")}
		got, err := decode(e.encode())
		if err != nil || !sameEnvelope(got, e) {
			t.Fatalf("%s: %+v, %v; want %+v", k, got, err, e)
		}
	}
	without, msg, err := readBroadcast(append(broadcastPayload([]string{"a", "b"}, nil), "m"...))
	if err != nil || !reflect.DeepEqual(without, []string{"a", "b"}) || string(msg) != "m" {
		t.Fatalf("broadcast payload: %q %q %v", without, msg, err)
	}
}
