module github.com/jsmplatform/jsm/e2e

go 1.26.0

replace (
	github.com/jsmplatform/jsm/libs => ../libs
	github.com/jsmplatform/jsm/proto => ../proto
	github.com/jsmplatform/jsm/services/audits => ../services/audits
	github.com/jsmplatform/jsm/services/changeadvisory => ../services/changeadvisory
	github.com/jsmplatform/jsm/services/contracts => ../services/contracts
	github.com/jsmplatform/jsm/services/incidents => ../services/incidents
	github.com/jsmplatform/jsm/services/patching => ../services/patching
	github.com/jsmplatform/jsm/services/reporting => ../services/reporting
)

require (
	connectrpc.com/connect v1.21.1
	github.com/jsmplatform/jsm/proto v0.0.0-00010101000000-000000000000
	github.com/nats-io/nats.go v1.55.0
	google.golang.org/protobuf v1.36.12
)

require (
	buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go v1.36.12-20260825204119-511051f7f437.2 // indirect
	github.com/klauspost/compress v1.20.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
