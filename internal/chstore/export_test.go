package chstore

import "context"

// ReadErrForTest exposes readErr's classification to the external tests.
func ReadErrForTest(err error) error { return readErr(context.Background(), "test", err) }
