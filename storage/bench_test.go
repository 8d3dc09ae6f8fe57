package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"party/storage/internal/ondisk"
)

// Storage benchmarks: 100-byte values under 16-byte keys, among 10,000 keys.
// FileStore fsyncs every write before it returns (one fsync per Put, one per
// Write of a whole Batch); the baselines are the floor each store stands on:
// a mutex-guarded map, and appending the same bytes to a file with an fsync.
//
//	go test ./storage -run '^$' -bench BenchmarkStorage -benchmem

const benchKeys = 10_000

// benchData returns the benchmarks' value and keys, made before timing.
func benchData() (value []byte, key func(i int) string) {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key/%012d", i)
	}
	return make([]byte, 100), func(i int) string { return keys[i%benchKeys] }
}

// benchStore returns a new store of kind "memory" or "file".
func benchStore(b *testing.B, kind string) Provider {
	if kind == "file" {
		return restartFile(b, b.TempDir())
	}
	return NewMemoryStore()
}

// benchOpen opens the benchmarks' room of p.
func benchOpen(b *testing.B, p Provider) Storage {
	s, err := p.Open("main", "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchFill writes the benchmarks' keys into s, in batches of 1,000.
func benchFill(b *testing.B, s Storage) {
	benchValue, benchKey := benchData()
	for i := 0; i < benchKeys; i += 1000 {
		var batch Batch
		for j := i; j < i+1000; j++ {
			batch.Put(benchKey(j), benchValue)
		}
		if err := s.Write(&batch); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLoop runs op b.N times on a storage of kind, filled first if fill,
// and fails at op's first error.
func benchLoop(b *testing.B, kind string, fill bool, op func(s Storage, i int) error) {
	s := benchOpen(b, benchStore(b, kind))
	if fill {
		benchFill(b, s)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := op(s, i); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStorage(b *testing.B) {
	benchValue, benchKey := benchData()
	for _, kind := range []string{"memory", "file"} {
		b.Run(kind+"/Put", func(b *testing.B) {
			b.SetBytes(int64(len(benchValue)))
			benchLoop(b, kind, false, func(s Storage, i int) error { return s.Put(benchKey(i), benchValue) })
		})
		b.Run(kind+"/Write100", func(b *testing.B) {
			b.SetBytes(100 * int64(len(benchValue)))
			var batch Batch
			benchLoop(b, kind, false, func(s Storage, i int) error {
				batch.Reset()
				for j := range 100 {
					batch.Put(benchKey(i*100+j), benchValue)
				}
				return s.Write(&batch)
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(100*b.N), "ns/put")
		})
		b.Run(kind+"/Get", func(b *testing.B) {
			benchLoop(b, kind, true, func(s Storage, i int) error {
				_, err := s.Get(benchKey(i * 7919))
				return err
			})
		})
		b.Run(kind+"/List100", func(b *testing.B) {
			benchLoop(b, kind, true, func(s Storage, i int) error {
				kvs, err := s.List(ListOptions{Start: benchKey(i * 7919 % (benchKeys - 100)), Limit: 100})
				if err == nil && len(kvs) != 100 {
					err = fmt.Errorf("listed %d entries, want 100", len(kvs))
				}
				return err
			})
		})
	}
}

func BenchmarkStorageFile(b *testing.B) {
	benchValue, benchKey := benchData()
	// One writer a room, on as many rooms as GOMAXPROCS: fsyncs of
	// different rooms' logs overlap.
	b.Run("PutParallelRooms", func(b *testing.B) {
		fs := restartFile(b, b.TempDir())
		var room sync.Mutex
		n := 0
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			room.Lock()
			n++
			s, err := fs.Open("main", fmt.Sprint("room", n))
			room.Unlock()
			if err != nil {
				b.Error(err)
				return
			}
			defer s.Close()
			for i := 0; pb.Next(); i++ {
				if err := s.Put(benchKey(i), benchValue); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Open10k", func(b *testing.B) {
		fs := restartFile(b, b.TempDir())
		s := benchOpen(b, fs)
		benchFill(b, s)
		s.Close() // each Open below reads the log
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			s, err := fs.Open("main", "bench")
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
}

func BenchmarkStorageBaseline(b *testing.B) {
	benchValue, benchKey := benchData()
	b.Run("map", func(b *testing.B) {
		var mu sync.Mutex
		m := map[string][]byte{}
		b.SetBytes(int64(len(benchValue)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			v := append([]byte{}, benchValue...)
			mu.Lock()
			m[benchKey(i)] = v
			mu.Unlock()
		}
	})
	b.Run("append+fsync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		rec := make([]byte, ondisk.HeaderLen+2+len(benchKey(0))+1+len(benchValue)) // a Put record's size
		b.SetBytes(int64(len(benchValue)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := f.Write(rec); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
