//go:build race

package main

// raceEnabled: the race detector's shadow memory and bookkeeping distort
// heap measurements.
const raceEnabled = true
