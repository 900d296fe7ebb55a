package otlpconv

import "strings"

// NormalizeContainerID reduces the runtime forms of a container id
// ("containerd://<64 hex>", "docker://…", upper case) to bare lower-case
// hex so that ids from different sources compare equal. Falco's 12-char
// short ids are prefixes of the normalized full id.
func NormalizeContainerID(id string) string {
	id = strings.TrimSpace(id)
	if i := strings.Index(id, "://"); i >= 0 {
		id = id[i+3:]
	}
	return strings.ToLower(id)
}
