//go:build !race

package canonicaljson

const raceEnabled = false
