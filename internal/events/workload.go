package events

import "strings"

// WorkloadFromPodName guesses the workload (the Deployment, StatefulSet,
// DaemonSet, Job... name) of a pod from its name alone, for sources that
// carry no owner references (Falco, Kubernetes events):
//
//   - "<deployment>-<replicaset hash>-<suffix>" (hash: 6 to 10, suffix: 5
//     characters of Kubernetes' name alphabet, which has no vowels and no
//     0, 1, 3) → "<deployment>";
//   - "<daemonset or job>-<suffix>" (5 such characters) → the prefix;
//   - "<statefulset>-<ordinal>" (digits) → "<statefulset>";
//   - anything else (a bare pod) → the pod name itself.
//
// It is a heuristic: a bare pod named like a generated one is taken for
// one. Pod objects with ownerReferences use WorkloadFromOwner instead.
func WorkloadFromPodName(pod string) string {
	if pod == "" {
		return ""
	}
	parts := strings.Split(pod, "-")
	n := len(parts)
	if n >= 3 && isGenerated(parts[n-1], 5, 5) && isGenerated(parts[n-2], 6, 10) {
		return strings.Join(parts[:n-2], "-")
	}
	if n >= 2 && isGenerated(parts[n-1], 5, 5) {
		return strings.Join(parts[:n-1], "-")
	}
	if n >= 2 && isDigits(parts[n-1]) {
		return strings.Join(parts[:n-1], "-")
	}
	return pod
}

// WorkloadFromOwner is the workload of a pod owned by ownerKind/ownerName:
// a ReplicaSet's Deployment (its name without the pod-template hash), or
// the owner itself.
func WorkloadFromOwner(ownerKind, ownerName string) string {
	if ownerKind == "ReplicaSet" {
		if i := strings.LastIndexByte(ownerName, '-'); i > 0 && isGenerated(ownerName[i+1:], 6, 10) {
			return ownerName[:i]
		}
	}
	return ownerName
}

// k8sNameAlphabet is the alphabet of Kubernetes' generated name suffixes
// (k8s.io/apimachinery/pkg/util/rand).
const k8sNameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func isGenerated(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(k8sNameAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
