package rca

import "time"

func fmtDuration(ns float64) string {
	return time.Duration(ns).Round(10 * time.Microsecond).String()
}
