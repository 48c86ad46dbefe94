# deflectd: every command the README shows, and the ones CI runs.
#
#   make test   unit and integration tests that need no root (race detector on)
#   make e2e    the real-Asterisk suite: builds a Debian sid chroot with Asterisk 22
#               once (cached outside the repo), places real SIP calls with sipp; needs root
#   make chaos  faults on the real parts, each one an assertion (root)
#   make soak   sipp at a set rate for SOAK_DURATION, failing on growth (root)
#   make fuzz   a short run of every fuzz target
#   make bench  the benchmarks of docs/benchmarks.md
#
# Set DEFLECTD_REQUIRE_DEPS=1 to make a missing dependency (root, sipp,
# debootstrap, redis-server) a test failure instead of a skip; CI does.

GO       ?= go
FUZZTIME ?= 20s
PKGS     := ./...

.PHONY: all build demo test e2e chaos soak vet fuzz bench check-format clean

all: build test

build:
	$(GO) build -o bin/deflectd ./cmd/deflectd

# The whole bridge against a simulated contact center (ari/aritest/sim), the
# fake Cloud API and a store of its own: needs only Go (redis-server is used
# when on PATH). Flags: go run ./cmd/deflectd demo -h
demo:
	$(GO) run ./cmd/deflectd demo

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags e2e $(PKGS)

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt wants to change:"; echo "$$out"; exit 1; fi

test: check-format vet
	$(GO) test -race -count=1 $(PKGS)

# One Asterisk serves the whole suite on fixed loopback ports, so packages run
# one at a time (-p 1).
e2e:
	$(GO) test -tags e2e -race -count=1 -p 1 -timeout 20m $(PKGS)

# Every fuzz target, briefly. FUZZTIME takes a duration (20s) or a count of
# runs (50000x); CI uses a count, which a busy machine cannot turn into a
# spurious deadline failure.
FUZZ_TARGETS := \
	./ari:FuzzDecodeEvent ./ari:FuzzTime ./ari/queuelog:FuzzParse \
	./whatsapp:FuzzRender ./whatsapp:FuzzLoadCatalog \
	./whatsapp/webhook:FuzzParse ./whatsapp/webhook:FuzzVerifySignature \
	./whatsapp/whatsapptest:FuzzMessagesEndpoint \
	./deflect/rules:FuzzEvaluate ./deflect/rules:FuzzLoad \
	./inbox:FuzzParseUsers ./inbox/inboxhttp:FuzzDecode \
	./deflect/report:FuzzAssemble

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn"; \
		$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s -parallel=1 $$pkg; \
	done

# The chaos suite on the real parts (root): Redis killed, Asterisk
# restarted, the Cloud API stopped, deflectd SIGKILLed in each state of a
# call, loss and delay on the way to Redis and Asterisk. Each scenario is an
# assertion; the figures go to $$DEFLECTD_ARTIFACTS/chaos.md when it is set
# (docs/reliability.md).
chaos:
	$(GO) test -tags e2e -count=1 -timeout 30m -run '^TestChaos' -v ./cmd/deflectd/ -chaos

# A soak on the real parts (root): sipp at 5 calls a second, about 100
# waiting, for SOAK_DURATION, sampling deflectd and Redis every SOAK_SAMPLE
# (docs/reliability.md).
SOAK_DURATION ?= 10m
SOAK_SAMPLE ?= 10s
SOAK_CPS ?= 5
soak:
	$(GO) test -tags e2e -count=1 -timeout 60m -run '^TestSoak$$' -v ./cmd/deflectd/ -soak-duration=$(SOAK_DURATION) -soak-sample=$(SOAK_SAMPLE) -soak-cps=$(SOAK_CPS)

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -cpu=1 -count=6 ./ari/
	$(GO) test -run='^$$' -bench=. -benchmem -count=3 ./whatsapp/ ./deflect/ewt/
	$(GO) test -run='^$$' -bench='BenchmarkInbox$$' -benchtime=2000x ./inbox/
	$(GO) test -run='^$$' -bench='EscalationBurst|MemoryPerConversation' -benchtime=1x ./inbox/

clean:
	rm -rf bin
