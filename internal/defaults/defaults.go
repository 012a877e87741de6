package defaults

import "time"

// Set sets a setting left at zero (or below) to def.
func Set[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
