package cluster

import (
	"party/storage"
)

// batchOps returns the net effect of b on a store whose keys has reports:
// the deletes of the keys b removes that the store holds, then the puts of
// the keys b leaves with a value, each key once, in the order b first named
// it. It fails as storage.Storage.Write does for an invalid batch. It costs
// O(b.Len()).
func batchOps(b *storage.Batch, has func(key string) bool) ([]op, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	last := make(map[string]storage.Op, b.Len())
	var order []string
	for o := range b.Ops() {
		if _, seen := last[o.Key]; !seen {
			order = append(order, o.Key)
		}
		last[o.Key] = o
	}
	var deletes, puts []op
	for _, k := range order {
		switch o := last[k]; {
		case !o.Delete:
			puts = append(puts, op{key: k, value: o.Value})
		case has(k):
			deletes = append(deletes, op{delete: true, key: k})
		}
	}
	return append(deletes, puts...), nil
}
