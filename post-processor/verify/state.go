package verify

// State keys of this post-processor's steps.
const (
	stateInput    = "verify_input"    // *inputImage
	stateInstance = "verify_instance" // *instance
	stateServer   = "verify_server"   // *metadataServer (metadata_service)
	stateReport   = "verify_report"   // *Report
	// stateHTTPSHostPort is the host port forwarded to the instance's
	// WinRM HTTPS port (5986).
	stateHTTPSHostPort = "verify_https_host_port"
)
