// Package openapi ships the OpenAPI 3.1 description of the endpoints that
// package github.com/contafy/billing serves: the portal session endpoint,
// the subscription status endpoint (GET /api/subscription) and the Stripe
// webhook. Serve [YAML] to API tools, or point them at openapi/openapi.yaml
// in the repository.
//
// The tests of this package send every row of the contract through the real
// handlers and validate each request and reply against the document with
// github.com/getkin/kin-openapi, so the document cannot drift from the code.
package openapi

import _ "embed"

// YAML is the OpenAPI 3.1 document (openapi.yaml).
//
//go:embed openapi.yaml
var YAML []byte
