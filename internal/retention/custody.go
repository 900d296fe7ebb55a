package retention

import (
	"encoding/json"
	"time"
)

// Custody actions.
const (
	CustodyBundleCreated   = "bundle_created"
	CustodyBundleCompleted = "bundle_completed"
	CustodyBundleFailed    = "bundle_failed"
	CustodyBundleDownload  = "bundle_downloaded"
	CustodyHoldCreated     = "hold_created"
	CustodyHoldReleased    = "hold_released"
	CustodyHoldExpired     = "hold_expired"
)

// CustodyEntry is one recorded act on evidence: who (the API key id, never
// the key; or "capture-rule:<id>", "system") did what, when.
type CustodyEntry struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Action   string          `json:"action"`
	Actor    string          `json:"actor"`
	BundleID string          `json:"bundleId,omitempty"`
	HoldID   string          `json:"holdId,omitempty"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}
