module github.com/contafy/billing

go 1.25

require (
	github.com/google/go-cmp v0.7.0
	github.com/stripe/stripe-go/v76 v76.25.0
)
