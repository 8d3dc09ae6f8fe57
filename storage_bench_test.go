package party

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Storage benchmarks: 100-byte values under 16-byte keys, among 10,000 keys.
// FileStore fsyncs every write before it returns (one fsync per Put, one per
// Write of a whole Batch); the baselines are the floor each store stands on:
// a mutex-guarded map, and appending the same bytes to a file with an fsync.
//
//	go test -run '^$' -bench BenchmarkStorage -benchmem
func BenchmarkStorage(b *testing.B) {
	const nkeys = 10_000
	value := make([]byte, 100)
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key/%012d", i)
	}
	open := func(b *testing.B, kind string) Storage {
		var p StorageProvider = NewMemoryStore()
		if kind == "file" {
			fs, err := OpenFileStore(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			p = fs
		}
		s, err := p.Open("main", "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	fill := func(b *testing.B, s Storage) {
		for i := 0; i < nkeys; i += 1000 {
			var batch Batch
			for _, k := range keys[i : i+1000] {
				batch.Put(k, value)
			}
			if err := s.Write(&batch); err != nil {
				b.Fatal(err)
			}
		}
	}

	for _, kind := range []string{"memory", "file"} {
		b.Run(kind+"/Put", func(b *testing.B) {
			s := open(b, kind)
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Put(keys[i%nkeys], value); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"/Write100", func(b *testing.B) {
			s := open(b, kind)
			b.SetBytes(100 * int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			var batch Batch
			for i := 0; i < b.N; i++ {
				batch.Reset()
				for j := range 100 {
					batch.Put(keys[(i*100+j)%nkeys], value)
				}
				if err := s.Write(&batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(100*b.N), "ns/put")
		})
		b.Run(kind+"/Get", func(b *testing.B) {
			s := open(b, kind)
			fill(b, s)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Get(keys[i*7919%nkeys]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"/List100", func(b *testing.B) {
			s := open(b, kind)
			fill(b, s)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := keys[i*7919%(nkeys-100)]
				kvs, err := s.List(ListOptions{Start: start, Limit: 100})
				if err != nil || len(kvs) != 100 {
					b.Fatal(len(kvs), err)
				}
			}
		})
	}
	// One writer a room, on as many rooms as GOMAXPROCS: fsyncs of
	// different rooms' logs overlap.
	b.Run("file/PutParallelRooms", func(b *testing.B) {
		fs, err := OpenFileStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
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
				if err := s.Put(keys[i%nkeys], value); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("file/Open10k", func(b *testing.B) {
		dir := b.TempDir()
		fs, err := OpenFileStore(dir)
		if err != nil {
			b.Fatal(err)
		}
		s, err := fs.Open("main", "bench")
		if err != nil {
			b.Fatal(err)
		}
		fill(b, s)
		s.Close()
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

	b.Run("baseline/map", func(b *testing.B) {
		var mu sync.Mutex
		m := map[string][]byte{}
		b.SetBytes(int64(len(value)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			v := append([]byte{}, value...)
			mu.Lock()
			m[keys[i%nkeys]] = v
			mu.Unlock()
		}
	})
	b.Run("baseline/append+fsync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		rec := make([]byte, recHeader+2+len(keys[0])+1+len(value)) // a Put record's size
		b.SetBytes(int64(len(value)))
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
