module github.com/contafy/billing/cmd/billing

go 1.25.0

require github.com/contafy/billing v0.0.0

require github.com/stripe/stripe-go/v76 v76.25.0

replace github.com/contafy/billing => ../..
