package runtime

// Internals for the external tests.
var (
	GraphIO      = graphIO
	DTypeFromORT = dtypeFromORT
)
