//go:build race

package canonicaljson

// The race detector makes sync.Pool drop items, so pooled code allocates.
const raceEnabled = true
