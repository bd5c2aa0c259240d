package procstat

import "math"

func nan() float64         { return math.NaN() }
func isInf(f float64) bool { return math.IsInf(f, 1) }
