package cluster

import (
	"party/storage"
)

// batchOps returns the net effect of b on a store holding keys: the deletes
// of the keys b removes, then the puts of the keys b leaves with a value.
// It fails as storage.Storage.Write does for an invalid batch.
//
// storage.Batch keeps its operations unexported, so they are read through
// what the core exports: b applied to an empty MemoryStore leaves exactly
// its final puts, and applied to a MemoryStore holding keys (with empty
// values) it removes exactly the keys whose last operation is a delete. This
// costs O(len(keys)) a batch; an iterator over a Batch's operations in the
// core would make it O(b.Len()).
func batchOps(b *storage.Batch, keys []string) ([]op, error) {
	var mem storage.MemoryStore
	puts, _ := mem.Open("", "puts") // MemoryStore.Open never fails
	defer puts.Close()
	if err := puts.Write(b); err != nil {
		return nil, err
	}
	final, _ := puts.List(storage.ListOptions{})
	var ops []op
	if len(keys) > 0 {
		left, _ := mem.Open("", "left")
		defer left.Close()
		for _, k := range keys {
			_ = left.Put(k, nil) // a stored key is valid
		}
		_ = left.Write(b) // valid: it was written above
		kept, _ := left.List(storage.ListOptions{})
		in := make(map[string]bool, len(kept))
		for _, kv := range kept {
			in[kv.Key] = true
		}
		for _, k := range keys {
			if !in[k] {
				ops = append(ops, op{delete: true, key: k})
			}
		}
	}
	for _, kv := range final {
		ops = append(ops, op{key: kv.Key, value: kv.Value})
	}
	return ops, nil
}
