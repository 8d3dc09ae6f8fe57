package cluster

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestClaimExclusive: 3 nodes claim the same 1,000 rooms at once; each room
// has exactly one winner, and every loser is told the winner's name.
func TestClaimExclusive(t *testing.T) {
	ns := startServer(t, "")
	const rooms = 1000
	nodes := make([]*Owners, 3)
	for i := range nodes {
		_, js := connect(t, ns)
		nodes[i] = newOwners(t, js, fmt.Sprintf("n%d", i), 10*time.Second)
	}
	ctx := testCtx(t, 30*time.Second)
	winners := make([][]string, rooms) // per room, the nodes that won it
	told := make([][]string, rooms)    // per room, the owners losers were told
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, o := range nodes {
		for w := range 20 { // 20 claimers per node, interleaved over the rooms
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := w; r < rooms; r += 20 {
					_, err := o.Claim(ctx, "main", fmt.Sprintf("room %d", r))
					var held *HeldError
					mu.Lock()
					switch {
					case err == nil:
						winners[r] = append(winners[r], o.Node())
					case errors.As(err, &held):
						told[r] = append(told[r], held.Owner.Node)
					default:
						t.Errorf("claim of room %d by %s: %v", r, o.Node(), err)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for r := range rooms {
		if len(winners[r]) != 1 {
			t.Fatalf("room %d: winners %v, want exactly one", r, winners[r])
		}
		for _, n := range told[r] {
			if n != winners[r][0] {
				t.Fatalf("room %d: a loser was told the owner is %s, the winner is %s", r, n, winners[r][0])
			}
		}
	}
}

// TestRenewalKeepsLease: a lease renewed every TTL/3 outlives several TTLs,
// and meanwhile nobody else can claim its room.
func TestRenewalKeepsLease(t *testing.T) {
	a, b, _ := twoNodes(t)
	ctx := testCtx(t, 10*time.Second)
	l, err := a.Claim(ctx, "main", "lobby")
	if err != nil {
		t.Fatal(err)
	}
	first := l.revision()
	end := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(end) {
		if _, err := b.Claim(ctx, "main", "lobby"); !errors.Is(err, ErrHeld) {
			t.Fatalf("claim by b while a renews: %v, want ErrHeld", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !l.Valid() {
		t.Fatalf("lease lost after 3.5 TTLs of renewals: %v", l.Err())
	}
	if got := l.revision(); got <= first+5 {
		t.Fatalf("revision %d after 3.5 TTLs, claimed at %d: too few renewals", got, first)
	}
	own, err := b.Owner(ctx, "main", "lobby")
	if err != nil || own.Node != "a" || own.Token != l.Token() {
		t.Fatalf("Owner = %+v, %v; want node a, token %d", own, err, l.Token())
	}
	if tok, err := a.Token("main", "lobby"); err != nil || tok != l.Token() {
		t.Fatalf("Token = %d, %v; want %d", tok, err, l.Token())
	}
}

// TestLostBeforeOthersClaim: a node whose renewals fail declares its lease
// lost before another node can claim the room; the other node then claims it
// with a greater token.
func TestLostBeforeOthersClaim(t *testing.T) {
	for _, how := range []string{"renewals dropped", "connection closed"} {
		t.Run(how, func(t *testing.T) {
			a, b, ncA := twoNodes(t)
			ctx := testCtx(t, 10*time.Second)
			la, err := a.Claim(ctx, "main", "lobby")
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond) // a renewal or so
			cut := time.Now()
			if how == "renewals dropped" {
				a.dropRenewals.Store(true)
			} else {
				ncA.Close()
			}
			lostAt := make(chan time.Time, 1)
			go func() { <-la.Lost(); lostAt <- time.Now() }()
			var lb *Lease
			var claimSent time.Time
			waitFor(t, 5*time.Second, "b's claim", func() bool {
				claimSent = time.Now()
				lb, err = b.Claim(ctx, "main", "lobby")
				if err != nil && !errors.Is(err, ErrHeld) {
					t.Fatal(err)
				}
				return err == nil
			})
			var lost time.Time
			select {
			case lost = <-lostAt:
			case <-time.After(5 * time.Second):
				t.Fatal("a's lease never declared lost")
			}
			t.Logf("cut at 0, a lost at %v, b claimed at %v", lost.Sub(cut), claimSent.Sub(cut))
			if !lost.Before(claimSent) {
				t.Fatalf("a declared its lease lost %v after b's claim was sent", lost.Sub(claimSent))
			}
			if la.Valid() || a.mustNoToken(t) {
				t.Fatal("a's lease still valid")
			}
			if lb.Token() <= la.Token() {
				t.Fatalf("b's token %d is not above a's %d", lb.Token(), la.Token())
			}
		})
	}
}

// mustNoToken reports whether o still hands out a token for main/lobby.
func (o *Owners) mustNoToken(t *testing.T) bool {
	_, err := o.Token("main", "lobby")
	if err != nil && !errors.Is(err, ErrNoOwner) {
		t.Fatal(err)
	}
	return err == nil
}

// TestStaleReleaseKeepsNewClaim: a lost lease's Release does not delete the
// claim that replaced it; the live lease's Release does, and the room can be
// claimed again at once, with a greater token.
func TestStaleReleaseKeepsNewClaim(t *testing.T) {
	a, b, _ := twoNodes(t)
	ctx := testCtx(t, 10*time.Second)
	la, err := a.Claim(ctx, "main", "lobby")
	if err != nil {
		t.Fatal(err)
	}
	a.dropRenewals.Store(true)
	var lb *Lease
	waitFor(t, 5*time.Second, "b's claim", func() bool {
		lb, err = b.Claim(ctx, "main", "lobby")
		return err == nil
	})
	if err := la.Release(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale Release: %v, want ErrLeaseLost", err)
	}
	if own, err := a.Owner(ctx, "main", "lobby"); err != nil || own.Node != "b" || own.Token != lb.Token() {
		t.Fatalf("after the stale Release, Owner = %+v, %v; want b's claim %d", own, err, lb.Token())
	}
	if err := lb.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if !errors.Is(lb.Err(), ErrLeaseLost) || lb.Valid() {
		t.Fatalf("released lease: Err %v", lb.Err())
	}
	select {
	case <-lb.Lost():
	default:
		t.Fatal("Lost not closed by Release")
	}
	if err := lb.Release(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("second Release: %v, want ErrLeaseLost", err)
	}
	if _, err := a.Owner(ctx, "main", "lobby"); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Owner after Release: %v, want ErrNoOwner", err)
	}
	a.dropRenewals.Store(false)
	la2, err := a.Claim(ctx, "main", "lobby")
	if err != nil {
		t.Fatalf("claim right after Release: %v", err)
	}
	if la2.Token() <= lb.Token() {
		t.Fatalf("new token %d not above %d", la2.Token(), lb.Token())
	}
	if _, err := a.Claim(ctx, "main", "lobby"); !errors.Is(err, ErrHeld) {
		t.Fatalf("second claim by the holder: %v, want ErrHeld", err)
	}
}

// twoNodes starts a server and two nodes, a and b, on their own
// connections, with 1 s leases; it returns a's connection too.
func twoNodes(t *testing.T) (a, b *Owners, ncA *nats.Conn) {
	ns := startServer(t, "")
	ncA, jsA := connect(t, ns)
	_, jsB := connect(t, ns)
	return newOwners(t, jsA, "a", time.Second), newOwners(t, jsB, "b", time.Second), ncA
}
