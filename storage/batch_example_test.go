package storage_test

import (
	"errors"
	"fmt"
	"strings"

	"party/storage"
)

// A Provider for another engine reads a Batch with Err and Ops in its Write.
func ExampleBatch_Ops() {
	var b storage.Batch
	b.Put("a", []byte("1"))
	b.Delete("b")
	b.Put("c", nil)
	if err := b.Err(); err != nil {
		fmt.Println(err)
		return
	}
	for op := range b.Ops() {
		if op.Delete {
			fmt.Printf("delete %s\n", op.Key)
		} else {
			fmt.Printf("put %s=%q\n", op.Key, op.Value)
		}
	}

	var bad storage.Batch
	bad.Put(strings.Repeat("k", storage.MaxKeyLen+1), nil)
	fmt.Println(errors.Is(bad.Err(), storage.ErrKeyTooLong))
	// Output:
	// put a="1"
	// delete b
	// put c=""
	// true
}
