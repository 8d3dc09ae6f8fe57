package storage

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
)

// survival is what a power cut keeps beyond what is durable: the first
// dirOps operations of the journal (-1: all of them), and of each file's
// changes since its last Sync, none, all, or all but the last, which is
// torn (half of its bytes kept). With rng, both are drawn from it instead:
// a random prefix of the journal, and of each file's changes, the last one
// kept maybe torn.
type survival struct {
	name   string
	dirOps int
	data   string // "none", "all" or "torn"
	rng    *rand.Rand
}

// survivals returns the cuts every power-cut test checks at each step:
// nothing kept, all the directory operations but no data, all the data but
// no directory operation, everything with the last write torn, and a random
// mix drawn from seed and step.
func survivals(seed uint64, step int) []survival {
	rng := rand.New(rand.NewPCG(seed, uint64(step)))
	return []survival{
		{name: "nothing kept", dirOps: 0, data: "none"},
		{name: "renames kept, data lost", dirOps: -1, data: "none"},
		{name: "data kept, renames lost", dirOps: 0, data: "all"},
		{name: "all kept, last write torn", dirOps: -1, data: "torn"},
		{name: "random", rng: rng},
	}
}

// cut returns the file system a power cut leaves of f, all of it durable,
// what sv keeps of what was not. f is left as it was.
func (f *faultFS) cut(sv survival) *faultFS {
	f.mu.Lock()
	defer f.mu.Unlock()
	entries := map[*fnode]map[string]*fnode{}
	entriesOf := func(d *fnode) map[string]*fnode {
		if entries[d] == nil {
			entries[d] = maps.Clone(d.durEntries)
		}
		return entries[d]
	}
	keep := sv.dirOps
	if sv.rng != nil {
		keep = sv.rng.IntN(journalOps(f.journal) + 1)
	}
	ops := 0
	for i, c := range f.journal {
		if i == 0 || c.op != f.journal[i-1].op {
			ops++
		}
		if keep >= 0 && ops > keep {
			break
		}
		if c.node == nil {
			delete(entriesOf(c.dir), c.name)
		} else {
			entriesOf(c.dir)[c.name] = c.node
		}
	}
	out := newFaultFS()
	copies := map[*fnode]*fnode{f.root: out.root}
	var walk func(from, to *fnode)
	walk = func(from, to *fnode) {
		m := entriesOf(from)
		for _, name := range slices.Sorted(maps.Keys(m)) { // the same draws for the same seed
			n := m[name]
			c := copies[n]
			if c == nil {
				c = n.survivor(sv)
				copies[n] = c
				if n.dir {
					walk(n, c)
				}
			}
			to.entries[name], to.durEntries[name] = c, c
		}
	}
	walk(f.root, out.root)
	return out
}

// survivor returns what a cut keeps of file or directory n, as sv says,
// without its entries.
func (n *fnode) survivor(sv survival) *fnode {
	if n.dir {
		return &fnode{dir: true, entries: map[string]*fnode{}, durEntries: map[string]*fnode{}}
	}
	keep, torn := 0, false
	switch {
	case sv.rng != nil:
		keep = sv.rng.IntN(len(n.pending) + 1)
		torn = keep < len(n.pending) && sv.rng.IntN(2) == 0
	case sv.data == "all":
		keep = len(n.pending)
	case sv.data == "torn":
		keep, torn = max(0, len(n.pending)-1), len(n.pending) > 0
	}
	b := slices.Clone(n.durable)
	for _, c := range n.pending[:keep] {
		b = applyChange(b, c)
	}
	if torn && !n.pending[keep].truncate {
		c := n.pending[keep]
		c.data = c.data[:len(c.data)/2]
		b = applyChange(b, c)
	}
	return &fnode{data: b, durable: slices.Clone(b)}
}

// journalOps returns how many directory operations the changes of journal
// are.
func journalOps(journal []dirChange) int {
	ops := 0
	for i, c := range journal {
		if i == 0 || c.op != journal[i-1].op {
			ops++
		}
	}
	return ops
}

// traceString returns the steps done, one a line.
func (f *faultFS) traceString() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.trace, "\n")
}
