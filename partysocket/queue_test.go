package partysocket

import (
	"fmt"
	"testing"

	"party"
)

// The send queue is FIFO whatever the mix of pushes and pops, and does not
// grow past what it holds at most when it keeps being drained.
func TestQueue(t *testing.T) {
	var q queue
	next, want := 0, 0
	for round := range 200 {
		for range round%7 + 1 {
			q.push(party.Text(fmt.Sprint(next)))
			next++
		}
		for range round%5 + 1 {
			if q.len() == 0 {
				break
			}
			if got := q.peek().String(); got != fmt.Sprint(want) {
				t.Fatalf("popped %s, want %d", got, want)
			}
			q.pop()
			want++
		}
	}
	for q.len() > 0 {
		if got := q.peek().String(); got != fmt.Sprint(want) {
			t.Fatalf("popped %s, want %d", got, want)
		}
		q.pop()
		want++
	}
	if want != next {
		t.Fatalf("popped %d messages, pushed %d", want, next)
	}

	var steady queue
	for i := range 10000 {
		steady.push(party.Text(fmt.Sprint(i)))
		steady.push(party.Text(fmt.Sprint(i)))
		steady.pop()
		if steady.len() > 1 {
			steady.pop()
		}
	}
	if c := cap(steady.buf); c > 16 {
		t.Errorf("a queue holding at most 2 messages has capacity %d", c)
	}
}
