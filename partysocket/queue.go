package partysocket

import "party/protocol"

// queue is the Socket's send queue: a FIFO of messages that reuses its
// array, so a queue that keeps emptying allocates nothing.
type queue struct {
	buf  []protocol.Message
	head int // buf[:head] is consumed
}

func (q *queue) len() int { return len(q.buf) - q.head }

func (q *queue) push(m protocol.Message) {
	if q.head > 0 && len(q.buf) == cap(q.buf) && q.head >= len(q.buf)/2 {
		// Full, with at least half of it consumed: slide down, not grow.
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, m)
}

// peek returns the oldest message; the queue must not be empty.
func (q *queue) peek() protocol.Message { return q.buf[q.head] }

// pop drops the oldest message; the queue must not be empty.
func (q *queue) pop() {
	q.buf[q.head] = protocol.Message{}
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	}
}
