//go:build race

package testutil

// RaceEnabled is true in a binary built with -race.
const RaceEnabled = true
