package allinone

import (
	"context"
	"fmt"
	"log/slog"
)

// kitLogger hands dskit's go-kit log lines to slog. Module lifecycle
// lines ("starting", "module stopped") are debug; warnings and errors
// keep their level.
type kitLogger struct{ l *slog.Logger }

func (k kitLogger) Log(keyvals ...any) error {
	lvl, msg := slog.LevelDebug, ""
	attrs := make([]any, 0, len(keyvals))
	for i := 0; i+1 < len(keyvals); i += 2 {
		key := fmt.Sprint(keyvals[i])
		switch val := fmt.Sprint(keyvals[i+1]); key {
		case "level":
			switch val {
			case "warn":
				lvl = slog.LevelWarn
			case "error":
				lvl = slog.LevelError
			}
		case "msg":
			msg = val
		default:
			attrs = append(attrs, key, keyvals[i+1])
		}
	}
	k.l.Log(context.Background(), lvl, msg, attrs...)
	return nil
}
