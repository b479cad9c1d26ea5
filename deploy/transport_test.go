package deploy_test

import "net/http"

// ownTransport is an HTTP client with a transport of its own. A nil client
// would share http.DefaultTransport, whose idle connections every
// httptest.Server.Close closes, breaking requests of parallel tests that
// are reusing one (net/http: "CloseIdleConnections called").
func ownTransport() *http.Client { return &http.Client{Transport: &http.Transport{}} }
