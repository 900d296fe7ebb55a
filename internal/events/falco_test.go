package events

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Alerts shaped like Falco's json_output (http_output) and falcosidekick's
// webhook payload: nanosecond RFC 3339 time, output_fields with nulls,
// numbers and "<NA>".
const (
	falcoShell = `{"hostname":"node-a","output":"10:01:02.123456789: Notice A shell was spawned in a container with an attached terminal (user=root user_loginuid=-1 k8s.ns=shop k8s.pod=checkout-7d9f8b6c5d-x2k4p container=3f2a9c1b7e4d shell=bash parent=runc cmdline=bash terminal=34816 container_id=3f2a9c1b7e4d image=ghcr.io/acme/checkout)","priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":["container","mitre_execution","shell"],"time":"2024-05-06T10:01:02.123456789Z","uuid":"5a7c2f0e-8d55-4b0a-9a51-0c1f6f0d7e11","output_fields":{"container.id":"3f2a9c1b7e4d","container.image.repository":"ghcr.io/acme/checkout","container.image.tag":"1.4.2","container.name":"checkout","evt.time":1714989662123456789,"k8s.ns.name":"shop","k8s.pod.name":"checkout-7d9f8b6c5d-x2k4p","proc.cmdline":"bash","proc.name":"bash","proc.pname":null,"proc.tty":34816,"user.loginuid":-1,"user.name":"root"}}`
	falcoWrite = `{"output":"10:02:00.000000001: Error File below / or /root opened for writing (user=root command=touch /root/x file=/root/x)","priority":"Error","rule":"Write below root","time":"2024-05-06T10:02:00.000000001Z","output_fields":{"container.id":"3F2A9C1B7E4D","fd.name":"/root/x","k8s.pod.name":"db-0","proc.cmdline":"touch /root/x","proc.name":"touch","user.name":"<NA>"}}`
	falcoHost  = `{"output":"10:03:00.5: Critical host event","priority":"Critical","rule":"Host rule","time":"2024-05-06T10:03:00.5+02:00","hostname":"node-b","output_fields":{"container.id":"host","proc.name":"sshd","evt.arg.flags":{"a":true}}}`
)

func TestParseFalcoShapesAgree(t *testing.T) {
	obs := time.Unix(1714990000, 0)
	single, err := ParseFalco("t1", []byte(falcoShell), obs)
	if err != nil {
		t.Fatal(err)
	}
	array, err := ParseFalco("t1", []byte("[\n"+falcoShell+",\n  "+falcoWrite+","+falcoHost+"]"), obs)
	if err != nil {
		t.Fatal(err)
	}
	ndjson, err := ParseFalco("t1", []byte(falcoShell+"\n"+falcoWrite+"\r\n\n"+falcoHost+"\n"), obs)
	if err != nil {
		t.Fatal(err)
	}
	if len(single) != 1 || len(array) != 3 || len(ndjson) != 3 {
		t.Fatalf("got %d/%d/%d events, want 1/3/3", len(single), len(array), len(ndjson))
	}
	if !reflect.DeepEqual(array, ndjson) {
		t.Fatalf("array and NDJSON differ:\n%+v\n%+v", array, ndjson)
	}
	if !reflect.DeepEqual(single[0], array[0]) {
		t.Fatalf("single and array differ:\n%+v\n%+v", single[0], array[0])
	}
	other, _ := ParseFalco("t2", []byte(falcoShell), obs)
	if other[0].ID == single[0].ID {
		t.Fatal("the same alert of another tenant must get another id")
	}

	got := single[0]
	want := Event{
		TenantID: "t1", ID: got.ID,
		TimeUnixNano:     uint64(time.Date(2024, 5, 6, 10, 1, 2, 123456789, time.UTC).UnixNano()),
		ObservedUnixNano: uint64(obs.UnixNano()),
		Source:           SourceFalco, Type: TypeSecurityAlert,
		Severity: SeverityNotice, SeverityText: "Notice",
		Reason:        "Terminal shell in container",
		Message:       got.Message,
		ContainerID:   "3f2a9c1b7e4d",
		ContainerName: "checkout",
		PodName:       "checkout-7d9f8b6c5d-x2k4p",
		Namespace:     "shop",
		NodeName:      "node-a",
		Workload:      "checkout",
		Image:         "ghcr.io/acme/checkout:1.4.2",
		ProcessName:   "bash", ProcessCmdline: "bash", UserName: "root",
		ExitCode: ExitCodeUnknown,
		Tags:     []string{"container", "mitre_execution", "shell"},
		FieldKeys: []string{"container.id", "container.image.repository", "container.image.tag", "container.name",
			"evt.time", "falco.hostname", "falco.source", "falco.uuid", "k8s.ns.name", "k8s.pod.name",
			"proc.cmdline", "proc.name", "proc.pname", "proc.tty", "user.loginuid", "user.name"},
		FieldValues: []string{"3f2a9c1b7e4d", "ghcr.io/acme/checkout", "1.4.2", "checkout",
			"1714989662123456789", "node-a", "syscall", "5a7c2f0e-8d55-4b0a-9a51-0c1f6f0d7e11", "shop", "checkout-7d9f8b6c5d-x2k4p",
			"bash", "bash", "", "34816", "-1", "root"},
	}
	if !strings.HasPrefix(got.Message, "10:01:02.123456789: Notice A shell") {
		t.Errorf("message %q", got.Message)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event:\n got %+v\nwant %+v", got, want)
	}

	w := array[1]
	if w.ContainerID != "3f2a9c1b7e4d" || w.Severity != SeverityError || w.UserName != "" || w.Workload != "db" || len(w.Tags) != 0 {
		t.Errorf("write event: %+v", w)
	}
	h := array[2]
	if h.ContainerID != "" || h.Severity != SeverityCritical || h.NodeName != "node-b" ||
		h.TimeUnixNano != uint64(time.Date(2024, 5, 6, 8, 3, 0, 5e8, time.UTC).UnixNano()) {
		t.Errorf("host event: %+v", h)
	}
	if i := indexOf(h.FieldKeys, "evt.arg.flags.a"); i < 0 || h.FieldValues[i] != "true" {
		t.Errorf("nested output field not flattened: %v %v", h.FieldKeys, h.FieldValues)
	}
}

func indexOf(s []string, v string) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	return -1
}

func TestParseFalcoErrors(t *testing.T) {
	ok := falcoWrite
	for _, tc := range []struct {
		name, body, want string
	}{
		{"empty", "  ", "empty body"},
		{"empty array", "[]", "empty JSON array"},
		{"not json", "hello", "record 1: malformed JSON"},
		{"truncated", `{"rule":"x"`, "record 1: malformed JSON"},
		{"bad third ndjson", ok + "\n" + ok + "\n{\"rule\":", "record 3: malformed JSON"},
		{"missing time", `{"rule":"r","priority":"Warning"}`, "record 1: field time: missing"},
		{"missing rule", `{"time":"2024-05-06T10:01:02Z","priority":"Warning"}`, "record 1: field rule: missing"},
		{"missing priority", `{"time":"2024-05-06T10:01:02Z","rule":"r"}`, "record 1: field priority: missing"},
		{"bad time", `{"time":"yesterday","rule":"r","priority":"Warning"}`, "record 1: field time: \"yesterday\" is not an RFC 3339"},
		{"bad priority", `{"time":"2024-05-06T10:01:02Z","rule":"r","priority":"Loud"}`, "record 1: field priority: unknown priority \"Loud\""},
		{"time type", `{"time":17,"rule":"r","priority":"Warning"}`, "record 1: field time: want string"},
		{"tags type", `{"time":"2024-05-06T10:01:02Z","rule":"r","priority":"Warning","tags":"x"}`, "record 1: field tags"},
		{"fields type", `{"time":"2024-05-06T10:01:02Z","rule":"r","priority":"Warning","output_fields":[1]}`, "record 1: field output_fields: want a JSON object"},
		{"array of non-objects", `[` + ok + `, 3]`, "record 2: not a JSON object"},
		{"array trailing garbage", `[` + ok + `] x`, "JSON array: malformed JSON"},
		{"scalar", `"x"`, "record 1: not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFalco("t", []byte(tc.body), time.Now())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestWorkloadFromPodName(t *testing.T) {
	for pod, want := range map[string]string{
		"checkout-7d9f8b6c5d-x2k4p": "checkout",
		"my-api-5c8f7b9d4-bq2wz":    "my-api",
		"node-exporter-x2k4p":       "node-exporter",
		"db-0":                      "db",
		"kafka-broker-12":           "kafka-broker",
		"standalone":                "standalone",
		"backup-job-aeiou":          "backup-job-aeiou", // vowels: not a generated suffix
		"":                          "",
	} {
		if got := WorkloadFromPodName(pod); got != want {
			t.Errorf("WorkloadFromPodName(%q) = %q, want %q", pod, got, want)
		}
	}
	if got := WorkloadFromOwner("ReplicaSet", "checkout-7d9f8b6c5d"); got != "checkout" {
		t.Errorf("owner ReplicaSet: %q", got)
	}
	if got := WorkloadFromOwner("StatefulSet", "db"); got != "db" {
		t.Errorf("owner StatefulSet: %q", got)
	}
}
