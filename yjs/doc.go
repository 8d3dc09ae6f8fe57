// Package yjs reads, writes, merges and diffs Yjs documents' updates without
// a document model, in Go: the part of y-partykit's job that a room needs to
// keep a Yjs document as bytes.
//
// Implemented, and tested against the npm yjs package (13.6):
//
//   - lib0's binary encoding as Yjs and y-protocols use it (Encoder, Decoder):
//     varUint, varInt, varUint8Array, varString and the "any" values (Any).
//   - The v1 update format (DecodeUpdate, Update.Encode): runs of GC, Skip
//     and Item structs with every content kind, and the delete set. Decoding
//     then encoding gives back every update yjs writes byte for byte. Clocks
//     count UTF-16 code units in strings, as in JavaScript.
//   - The document-free operations of yjs's src/utils/updates.js:
//     MergeUpdates (Y.mergeUpdates), EncodeStateVectorFromUpdate
//     (Y.encodeStateVectorFromUpdate) and DiffUpdate (Y.diffUpdate), with the
//     decoded forms Merge, Update.StateVector and Update.Diff.
//   - Strict decoding: input that yjs would fail on, and input that could make
//     a merge or diff produce something yjs fails on, is refused with an error
//     wrapping ErrMalformed; no input makes this package panic.
//   - A room Server (NewServer) for party: y-protocols' sync, awareness and
//     auth messages as y-websocket's and y-partykit's providers speak them,
//     the document kept in the room's Storage (an update log compacted into
//     a snapshot), Options.Load and a debounced Options.OnChange, and
//     Server.Document and Server.Apply for the app's own reads and writes.
//
// Not implemented yet: the v2 update format, and a document model (applying
// an update to shared types, garbage collection, reading text or maps).
//
// Everything here but the Server is pure: functions take bytes or values and
// return new ones, and are safe to call from any number of goroutines on
// distinct or shared inputs as long as nobody changes those inputs meanwhile.
package yjs
