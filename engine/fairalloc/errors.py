"""Errors as values: every stage reports problems as :class:`Diagnostic` records.

A diagnostic has a stable ``code`` (tests and tools match on it, never on wording), a human
message, an optional one-line ``hint`` saying how to fix it, and a :class:`Location` — a
``file:line:column`` into a policy or a JSON pointer into a trade document. Stages collect
diagnostics and raise one :class:`FairallocError` carrying all of them, so that a user sees every
mistake at once. The CLI maps the error's category to a documented exit code (see ``docs/cli.md``).

Every code is a member of :class:`Code`, the registry: the code's text (what tools match on), the
exit status it is reported with and the docs section that explains it. ``docs/cli.md`` lists the
registry and a test holds every code raised anywhere in the package to it. :func:`suggest` is the
one "did you mean ...?" of the code base.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec


class ExitCode(enum.IntEnum):
    """Process exit statuses of the ``fairalloc`` command. Documented in ``docs/cli.md``."""

    OK = 0
    CHECK_FAILED = 1  # a check ran and found something: fmt --check, policy tests, verify, replay
    USAGE = 2  # bad command-line arguments
    INVALID_POLICY = 3  # the policy file is not a valid policy
    INVALID_INPUT = 4  # a trade document or other input file is malformed
    REFUSED = 5  # input is well-formed but a control refuses it (pre-trade, timing, coverage)
    LEDGER = 6  # the ledger refused a write or is unreachable
    IO = 7  # a file could not be read or written
    NOT_TESTED = 8  # review: a test could not run, so the result is no clean bill
    MISSING_EXTRA = 69  # the command needs an optional extra that is not installed (sysexits EX_UNAVAILABLE)
    INTERNAL = 70  # a defect in fairalloc itself


class _Family:
    """What the codes of one family share: the exit status and the docs section. (A plain class:
    a dataclass costs start-up its generated methods' compilation, and this one needs none.)"""

    __slots__ = ("exit", "anchor")

    def __init__(self, exit: ExitCode, anchor: str) -> None:
        self.exit = exit
        self.anchor = anchor


_POLICY = _Family(ExitCode.INVALID_POLICY, "policy-language.md#checks-and-their-error-codes")
_INPUT = _Family(ExitCode.INVALID_INPUT, "cli.md#trade-document-errors-status-4")
_REFUSAL = _Family(ExitCode.REFUSED, "cli.md#refusals-by-controls-status-5")
_FILE = _Family(ExitCode.IO, "cli.md#file-errors-status-7")
_REVIEW_FILE = _Family(ExitCode.IO, "policy-review.md#exit-statuses-and-error-codes")
_POLICY_TEST = _Family(ExitCode.INVALID_INPUT, "policy-review.md#policy-tests")
_DEFECT = _Family(ExitCode.INTERNAL, "policy-review.md#fairalloc-fmt")
_LEDGER_INPUT = _Family(ExitCode.INVALID_INPUT, "ledger.md#exit-statuses-and-error-codes")
_WORKFLOW_REFUSAL = _Family(ExitCode.REFUSED, "ledger.md#exit-statuses-and-error-codes")
_WORKFLOW_CONFLICT = _Family(ExitCode.LEDGER, "ledger.md#exit-statuses-and-error-codes")
_LEDGER = _Family(ExitCode.LEDGER, "ledger.md#exit-statuses-and-error-codes")
_VERIFY = _Family(ExitCode.CHECK_FAILED, "ledger.md#tamper-evidence-fairalloc-ledger-verify")
_CHECKPOINT = _Family(ExitCode.CHECK_FAILED, "ledger.md#signed-checkpoints-and-proofs")
_CHECKPOINT_INPUT = _Family(ExitCode.INVALID_INPUT, "ledger.md#signed-checkpoints-and-proofs")
_CHECKPOINT_FILE = _Family(ExitCode.IO, "ledger.md#signed-checkpoints-and-proofs")
_EXTRA = _Family(ExitCode.MISSING_EXTRA, "cli.md#installation-and-extras")
_EVAL_CONTEXT = _Family(ExitCode.INVALID_INPUT, "cli.md#fairalloc-eval-expr---context-file")
_FIX_INPUT = _Family(ExitCode.INVALID_INPUT, "fix.md#error-codes")
_FIX_REFUSAL = _Family(ExitCode.REFUSED, "fix.md#error-codes")
_FIX_FILE = _Family(ExitCode.IO, "fix.md#error-codes")

_SERVICE_START = _Family(ExitCode.INVALID_INPUT, "service.md#the-http-service-fairalloc-serve")
_SERVICE_FILE = _Family(ExitCode.IO, "service.md#the-http-service-fairalloc-serve")
_SERVICE_INPUT = _Family(ExitCode.INVALID_INPUT, "service.md#problems-every-refusal-with-the-clis-code-and-pointer")
_FORENSICS_OPTION = _Family(ExitCode.INVALID_INPUT, "forensics.md#quick-start")
_FORENSICS_GROUP = _Family(ExitCode.INVALID_INPUT, "forensics.md#the-favoured-group")
_FORENSICS_INPUT = _Family(ExitCode.INVALID_INPUT, "forensics.md#inputs")
_FORENSICS_FILE = _Family(ExitCode.IO, "forensics.md#exit-status")


if TYPE_CHECKING:
    _Registered = enum.StrEnum
else:

    class _Registry(type):
        """The class of :class:`Code`: what the code base asks of an enumeration's class, built
        for a tenth of what ``enum`` spends on it (with some 280 members, making ``Code`` an
        ``enum.StrEnum`` was the costliest single import of a command's start-up).

        An entry ``NAME = value, family`` of the class body becomes the member ``NAME``, made by
        the class's ``__new__``. The class iterates its members in the order written, ``Code[name]``
        is a member by its name and ``Code(text)`` one by its text; texts are unique."""

        def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
            entries = {key: value for key, value in namespace.items()
                       if isinstance(value, tuple) and not key.startswith("_")}
            cls = super().__new__(mcls, name, bases, {key: value for key, value in namespace.items()
                                                      if key not in entries})
            cls._member_map_ = {}
            cls._value2member_map_ = {}
            for key, args in entries.items():
                member = cls.__new__(cls, *args)
                member._name_ = key
                if member._value_ in cls._value2member_map_:
                    raise TypeError(f"{name}.{key} repeats the text {member._value_!r}")
                cls._member_map_[key] = cls._value2member_map_[member._value_] = member
                type.__setattr__(cls, key, member)
            return cls

        def __iter__(cls) -> Iterator[Any]:
            return iter(cls._member_map_.values())

        def __len__(cls) -> int:
            return len(cls._member_map_)

        def __getitem__(cls, name: str) -> Any:
            return cls._member_map_[name]

        def __call__(cls, value: str) -> Any:
            try:
                return cls._value2member_map_[value]
            except KeyError:
                raise ValueError(f"{value!r} is not a valid {cls.__qualname__}") from None

    class _Registered(str, metaclass=_Registry):
        """A member: a string that is its text, with an enumeration member's ``name``, ``value``,
        ``repr``, copying (itself) and pickling (by its text)."""

        @property
        def name(self) -> str:
            return self._name_

        @property
        def value(self) -> str:
            return self._value_

        def __repr__(self) -> str:
            return f"<{type(self).__name__}.{self._name_}: {self._value_!r}>"

        def __reduce_ex__(self, protocol: object) -> tuple[Any, tuple[str]]:
            return type(self), (self._value_,)

        def __copy__(self) -> Any:
            return self

        def __deepcopy__(self, memo: object) -> Any:
            return self


class Code(_Registered):
    """The registry of error codes. A member *is* its code's text (``Code.YAML_SYNTAX == "yaml-syntax"``),
    so it stands wherever a code string does; ``exit`` is the status the CLI exits with when the code
    is reported, ``anchor`` the ``docs/`` page and section explaining it.

    Codes are stable: a code once shipped keeps its text. Trade-document codes not listed here are
    ``trade-`` followed by the contract check that failed (see ``docs/cli.md``).
    """

    exit: ExitCode
    anchor: str

    def __new__(cls, value: str, family: _Family) -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.exit = family.exit
        member.anchor = family.anchor
        return member

    YAML_SYNTAX = "yaml-syntax", _POLICY
    YAML_EMPTY = "yaml-empty", _POLICY
    YAML_DUPLICATE_KEY = "yaml-duplicate-key", _POLICY
    YAML_MERGE = "yaml-merge", _POLICY
    YAML_KEY = "yaml-key", _POLICY
    YAML_NUMBER = "yaml-number", _POLICY
    YAML_DATE = "yaml-date", _POLICY

    YAML_TOO_LARGE = "yaml-too-large", _POLICY
    YAML_TOO_DEEP = "yaml-too-deep", _POLICY
    YAML_TOO_MANY_VALUES = "yaml-too-many-values", _POLICY
    YAML_ALIAS = "yaml-alias", _POLICY
    YAML_TAG = "yaml-tag", _POLICY
    YAML_AMBIGUOUS_SCALAR = "yaml-ambiguous-scalar", _POLICY
    YAML_NUMBER_RANGE = "yaml-number-range", _POLICY

    SCHEMA = "schema", _POLICY
    SCHEMA_UNKNOWN_KEY = "schema-unknown-key", _POLICY
    SCHEMA_MISSING_KEY = "schema-missing-key", _POLICY
    SCHEMA_VALUE = "schema-value", _POLICY
    SCHEMA_TYPE = "schema-type", _POLICY
    SCHEMA_RANGE = "schema-range", _POLICY
    SCHEMA_FORMAT = "schema-format", _POLICY
    SCHEMA_MINIMUM_KIND = "schema-minimum-kind", _POLICY
    SCHEMA_EMPTY = "schema-empty", _POLICY
    SCHEMA_DUPLICATE = "schema-duplicate", _POLICY

    EXPR_SYNTAX = "expr-syntax", _POLICY
    EXPR_UNKNOWN_ROOT = "expr-unknown-root", _POLICY
    EXPR_UNKNOWN_FIELD = "expr-unknown-field", _POLICY
    EXPR_UNKNOWN_NAME = "expr-unknown-name", _POLICY
    EXPR_UNKNOWN_FUNCTION = "expr-unknown-function", _POLICY
    EXPR_ARITY = "expr-arity", _POLICY
    EXPR_TYPE = "expr-type", _POLICY
    EXPR_BAD_LITERAL = "expr-bad-literal", _POLICY
    EXPR_TOO_LONG = "expr-too-long", _POLICY
    EXPR_TOO_DEEP = "expr-too-deep", _POLICY
    EXPR_NUMBER_RANGE = "expr-number-range", _POLICY
    EXPR_IMPOSSIBLE_VALUE = "expr-impossible-value", _POLICY

    ATTRIBUTE_SHADOWS_FIELD = "attribute-shadows-field", _POLICY
    ATTRIBUTE_RESERVED_WORD = "attribute-reserved-word", _POLICY
    ATTRIBUTE_VALUES = "attribute-values", _POLICY
    ATTRIBUTE_DEFAULT = "attribute-default", _POLICY
    SECTION_UNUSED = "section-unused", _POLICY
    ROUNDING_UNUSED = "rounding-unused", _POLICY
    REMAINDER_WITH_QUOTA = "remainder-with-quota", _POLICY
    REMAINDER_NEEDS_ROTATION = "remainder-needs-rotation", _POLICY
    FAIRNESS_ROUNDING = "fairness-rounding", _POLICY
    ROTATION_MISSING = "rotation-missing", _POLICY
    ROTATION_ORDER = "rotation-order", _POLICY
    ROTATION_DUPLICATE = "rotation-duplicate", _POLICY
    ROTATION_ORDER_TYPE = "rotation-order-type", _POLICY
    MINIMUM_RELATIVE = "minimum-relative", _POLICY
    THRESHOLD_UNREACHABLE = "threshold-unreachable", _POLICY
    MINIMUM_WITH_PRICE_TIME = "minimum-with-price-time", _POLICY
    ODD_LOTS_WITH_QUOTA = "odd-lots-with-quota", _POLICY
    RULE_DUPLICATE_ID = "rule-duplicate-id", _POLICY
    RULE_CONSTANT = "rule-constant", _POLICY
    RULE_CAP_QUANTITY = "rule-cap-quantity", _POLICY
    RULE_QUANTITY_UNUSED = "rule-quantity-unused", _POLICY
    POLICY_TYPE = "policy-type", _POLICY
    REASON_CODE_DUPLICATE = "reason-code-duplicate", _POLICY
    DEADLINE_TIMEZONE = "deadline-timezone", _POLICY
    PRICE_ROUNDING_NEEDS_AVERAGE = "price-rounding-needs-average", _POLICY
    COSTS_SCHEDULE = "costs-schedule", _POLICY

    JSON_SYNTAX = "json-syntax", _INPUT
    JSON_DUPLICATE_KEY = "json-duplicate-key", _INPUT
    JSON_TOO_LARGE = "json-too-large", _INPUT
    JSON_TOO_DEEP = "json-too-deep", _INPUT
    JSON_NUMBER_RANGE = "json-number-range", _INPUT

    TRADE_TYPE = "trade-type", _INPUT
    TRADE_MISSING = "trade-missing", _INPUT
    TRADE_UNKNOWN_FIELD = "trade-unknown-field", _INPUT
    TRADE_VALUE = "trade-value", _INPUT
    TRADE_TIMESTAMP = "trade-timestamp", _INPUT
    TRADE_DATE = "trade-date", _INPUT
    TRADE_NUMBER_RANGE = "trade-number-range", _INPUT
    TRADE_ACCOUNT_ID = "trade-account-id", _INPUT
    TRADE_ACCOUNT_LOOKALIKE = "trade-account-lookalike", _INPUT
    TRADE_ATTRIBUTE_KEY = "trade-attribute-key", _INPUT
    TRADE_STRING_UNICODE = "trade-string-unicode", _INPUT
    TRADE_TOO_MANY_PIECES = "trade-too-many-pieces", _INPUT


    TRADE_ATTRIBUTE = "trade-attribute", _INPUT
    TRADE_ATTRIBUTE_MISSING = "trade-attribute-missing", _INPUT

    EXPR_NULL = "expr-null", _INPUT
    EXPR_DIVISION_BY_ZERO = "expr-division-by-zero", _INPUT
    EXPR_OVERFLOW = "expr-overflow", _INPUT
    EXPR_BAD_VALUE = "expr-bad-value", _INPUT
    EXPR_INVALID_ARGUMENT = "expr-invalid-argument", _INPUT
    EXPR_MISSING_FIELD = "expr-missing-field", _INPUT
    EXPRESSION_RUNTIME = "expression-runtime", _INPUT
    WEIGHT_INVALID = "weight-invalid", _INPUT
    MINIMUM_INVALID = "minimum-invalid", _INPUT
    CAP_INVALID = "cap-invalid", _INPUT
    PRIORITY_INVALID = "priority-invalid", _INPUT
    ROTATION_STATE = "rotation-state", _INPUT
    ROTATION_GROUP_MISMATCH = "rotation-group-mismatch", _INPUT
    COST_PRECISION = "cost-precision", _INPUT
    COST_SCHEDULE_INVALID = "cost-schedule-invalid", _INPUT
    FAIRNESS_STATE = "fairness-state", _INPUT
    FAIRNESS_GROUP_MISMATCH = "fairness-group-mismatch", _INPUT

    ZERO_QUANTITY = "zero-quantity", _REFUSAL
    STATEMENT_AFTER_ORDER = "statement-after-order", _REFUSAL
    DUPLICATE_ACCOUNT = "duplicate-account", _REFUSAL
    STATEMENT_TOTAL_MISMATCH = "statement-total-mismatch", _REFUSAL
    DUPLICATE_FILL = "duplicate-fill", _REFUSAL
    FILL_BEFORE_ORDER = "fill-before-order", _REFUSAL
    FILL_OUTSIDE_LIMIT = "fill-outside-limit", _REFUSAL
    OVERFILL = "overfill", _REFUSAL
    POLICY_NOT_EFFECTIVE = "policy-not-effective", _REFUSAL
    POLICY_NOT_APPLICABLE = "policy-not-applicable", _REFUSAL

    UNALLOCATABLE = "unallocatable", _REFUSAL
    FILL_UNALLOCATABLE = "fill-unallocatable", _REFUSAL
    ROTATION_UNKNOWN_ACCOUNT = "rotation-unknown-account", _REFUSAL
    ROTATION_OUT_OF_ORDER = "rotation-out-of-order", _REFUSAL
    COSTS_UNSHARED = "costs-unshared", _REFUSAL
    ODD_LOT_RECIPIENT_UNKNOWN = "odd-lot-recipient-unknown", _REFUSAL

    FILE_NOT_FOUND = "file-not-found", _FILE
    FILE_NOT_UTF8 = "file-not-utf8", _FILE
    FILE_UNREADABLE = "file-unreadable", _FILE
    FILE_UNWRITABLE = "file-unwritable", _FILE

    EXPORT_DIRECTORY = "export-directory", _REVIEW_FILE
    EXPORT_WRITE = "export-write", _REVIEW_FILE
    GIT_SHOW_FAILED = "git-show-failed", _REVIEW_FILE
    GIT_UNAVAILABLE = "git-unavailable", _REVIEW_FILE
    SOURCE_NOT_FOUND = "source-not-found", _REVIEW_FILE
    IMPACT_TRADES = "impact-trades", _REVIEW_FILE

    POLICYTEST_ALLOCATIONS = "policytest-allocations", _POLICY_TEST
    POLICYTEST_CASES = "policytest-cases", _POLICY_TEST
    POLICYTEST_EXCEPTIONS = "policytest-exceptions", _POLICY_TEST
    POLICYTEST_EXPECT = "policytest-expect", _POLICY_TEST
    POLICYTEST_FAIRNESS = "policytest-fairness", _POLICY_TEST
    POLICYTEST_MONEY = "policytest-money", _POLICY_TEST
    POLICYTEST_NAME = "policytest-name", _POLICY_TEST
    POLICYTEST_POLICY = "policytest-policy", _POLICY_TEST
    POLICYTEST_QUANTITY = "policytest-quantity", _POLICY_TEST
    POLICYTEST_REFUSED = "policytest-refused", _POLICY_TEST
    POLICYTEST_ROTATION = "policytest-rotation", _POLICY_TEST
    POLICYTEST_TRADE = "policytest-trade", _POLICY_TEST
    POLICYTEST_TYPE = "policytest-type", _POLICY_TEST
    POLICYTEST_UNKNOWN_KEY = "policytest-unknown-key", _POLICY_TEST

    FMT_MEANING_CHANGED = "fmt-meaning-changed", _DEFECT

    BAD_ANCHOR = "bad-anchor", _LEDGER_INPUT
    BAD_OVERRIDE_QUANTITY = "bad-override-quantity", _LEDGER_INPUT

    BAD_USER = "bad-user", _WORKFLOW_REFUSAL
    FILLS_EXCEED_ORDER = "fills-exceed-order", _WORKFLOW_REFUSAL
    NO_POLICY_IN_EFFECT = "no-policy-in-effect", _WORKFLOW_REFUSAL
    ORDER_NOT_ALLOCATED = "order-not-allocated", _WORKFLOW_REFUSAL
    ORDER_NOT_ENTERED = "order-not-entered", _WORKFLOW_REFUSAL
    ORDER_NOT_FILLED = "order-not-filled", _WORKFLOW_REFUSAL
    OVERRIDE_MEMO_REQUIRED = "override-memo-required", _WORKFLOW_REFUSAL
    OVERRIDE_NEGATIVE = "override-negative", _WORKFLOW_REFUSAL
    OVERRIDE_NOT_PENDING = "override-not-pending", _WORKFLOW_REFUSAL
    OVERRIDE_REASON_NOT_ALLOWED = "override-reason-not-allowed", _WORKFLOW_REFUSAL
    OVERRIDE_TOTAL_MISMATCH = "override-total-mismatch", _WORKFLOW_REFUSAL
    OVERRIDE_UNKNOWN_ACCOUNT = "override-unknown-account", _WORKFLOW_REFUSAL
    POLICY_AMBIGUOUS = "policy-ambiguous", _WORKFLOW_REFUSAL
    PRETRADE_ACCOUNT_NOT_COVERED = "pretrade-account-not-covered", _WORKFLOW_REFUSAL
    PRETRADE_QUANTITY_NOT_COVERED = "pretrade-quantity-not-covered", _WORKFLOW_REFUSAL
    PRETRADE_STATEMENT_MISMATCH = "pretrade-statement-mismatch", _WORKFLOW_REFUSAL
    PRETRADE_STATEMENT_MISSING = "pretrade-statement-missing", _WORKFLOW_REFUSAL
    REVIEW_BY_REQUESTER = "review-by-requester", _WORKFLOW_REFUSAL
    ROLE_REQUIRED = "role-required", _WORKFLOW_REFUSAL
    UNKNOWN_ROLE = "unknown-role", _WORKFLOW_REFUSAL

    FILL_CONFLICT = "fill-conflict", _WORKFLOW_CONFLICT
    ORDER_ALREADY_ALLOCATED = "order-already-allocated", _WORKFLOW_CONFLICT
    ORDER_ALREADY_ENTERED = "order-already-entered", _WORKFLOW_CONFLICT
    ORDER_UNKNOWN = "order-unknown", _WORKFLOW_CONFLICT
    OVERRIDE_PENDING = "override-pending", _WORKFLOW_CONFLICT
    POLICY_DIGEST_MISMATCH = "policy-digest-mismatch", _WORKFLOW_CONFLICT
    POLICY_NOT_PUBLISHED = "policy-not-published", _WORKFLOW_CONFLICT
    POLICY_VERSION_CONFLICT = "policy-version-conflict", _WORKFLOW_CONFLICT
    ROTATION_ALREADY_STARTED = "rotation-already-started", _WORKFLOW_CONFLICT
    STATEMENT_ALREADY_RECORDED = "statement-already-recorded", _WORKFLOW_CONFLICT

    LEDGER_BAD_URL = "ledger-bad-url", _LEDGER
    LEDGER_CONFLICT = "ledger-conflict", _LEDGER
    LEDGER_NOT_INITIALISED = "ledger-not-initialised", _LEDGER
    LEDGER_UNREACHABLE = "ledger-unreachable", _LEDGER
    LEDGER_APPEND_ONLY = "ledger-append-only", _LEDGER
    LEDGER_DATABASE_ERROR = "ledger-database-error", _LEDGER
    REPLAY_NO_ALLOCATION = "replay-no-allocation", _LEDGER
    DEMO_STEP_FAILED = "demo-step-failed", _LEDGER

    LEDGER_ANCHOR_MISMATCH = "ledger-anchor-mismatch", _VERIFY
    LEDGER_CHAIN_BROKEN = "ledger-chain-broken", _VERIFY
    LEDGER_EVENT_EDITED = "ledger-event-edited", _VERIFY
    LEDGER_EVENT_MISSING = "ledger-event-missing", _VERIFY
    LEDGER_EVENTS_REORDERED = "ledger-events-reordered", _VERIFY
    LEDGER_HASH_FORGED = "ledger-hash-forged", _VERIFY
    LEDGER_TIME_REVERSED = "ledger-time-reversed", _VERIFY

    CHECKPOINT_UNKNOWN_KEY = "checkpoint-unknown-key", _CHECKPOINT
    CHECKPOINT_SIGNATURE_INVALID = "checkpoint-signature-invalid", _CHECKPOINT
    CHECKPOINT_ORIGIN_MISMATCH = "checkpoint-origin-mismatch", _CHECKPOINT
    CHECKPOINT_LEDGER_TRUNCATED = "checkpoint-ledger-truncated", _CHECKPOINT
    CHECKPOINT_ROOT_MISMATCH = "checkpoint-root-mismatch", _CHECKPOINT
    CHECKPOINT_INCONSISTENT = "checkpoint-inconsistent", _CHECKPOINT
    BAD_KEY_NAME = "bad-key-name", _CHECKPOINT_INPUT
    BAD_SIGNING_KEY = "bad-signing-key", _CHECKPOINT_INPUT
    BAD_VERIFIER_KEY = "bad-verifier-key", _CHECKPOINT_INPUT
    CHECKPOINT_MALFORMED = "checkpoint-malformed", _CHECKPOINT_INPUT
    CHECKPOINT_NEEDS_KEY = "checkpoint-needs-key", _CHECKPOINT_INPUT
    PROOF_ARGUMENTS = "proof-arguments", _CHECKPOINT_INPUT
    PROOF_EVENT_UNKNOWN = "proof-event-unknown", _CHECKPOINT_INPUT
    PROOF_CHECKPOINT_ORDER = "proof-checkpoint-order", _CHECKPOINT_INPUT
    KEY_FILE_EXISTS = "key-file-exists", _CHECKPOINT_FILE
    KEY_FILE_WRITE = "key-file-write", _CHECKPOINT_FILE
    CHECKPOINT_WRITE = "checkpoint-write", _CHECKPOINT_FILE

    MISSING_EXTRA = "missing-extra", _EXTRA

    CONTEXT_TYPE = "context-type", _EVAL_CONTEXT
    CONTEXT_UNKNOWN_ROOT = "context-unknown-root", _EVAL_CONTEXT
    CONTEXT_UNKNOWN_FIELD = "context-unknown-field", _EVAL_CONTEXT
    CONTEXT_VALUE = "context-value", _EVAL_CONTEXT

    ACCOUNT_ID_INVALID = "account-id-invalid", _WORKFLOW_REFUSAL
    ACCOUNT_ID_DUPLICATE = "account-id-duplicate", _WORKFLOW_REFUSAL
    ACTOR_NOT_AUTHENTICATED = "actor-not-authenticated", _WORKFLOW_REFUSAL
    ACTOR_ROLE_NAME = "actor-role-name", _WORKFLOW_REFUSAL
    EXECUTION_IN_FUTURE = "execution-in-future", _WORKFLOW_REFUSAL
    FILL_NOT_IN_FORCE = "fill-not-in-force", _WORKFLOW_REFUSAL
    INTENT_AFTER_ENTRY = "intent-after-entry", _WORKFLOW_REFUSAL
    INTENT_AFTER_EXECUTION = "intent-after-execution", _WORKFLOW_REFUSAL
    LAST_ADMIN = "last-admin", _WORKFLOW_REFUSAL
    LATE_MEMO_REQUIRED = "late-memo-required", _WORKFLOW_REFUSAL
    LATE_REASON_UNKNOWN = "late-reason-unknown", _WORKFLOW_REFUSAL
    LEDGER_PRIVILEGED_WRITER = "ledger-privileged-writer", _WORKFLOW_REFUSAL
    ROLE_NOT_HELD = "role-not-held", _WORKFLOW_REFUSAL
    SERVICE_NOT_AUTHORISED = "service-not-authorised", _WORKFLOW_REFUSAL
    LEDGER_ALREADY_INITIALISED = "ledger-already-initialised", _WORKFLOW_CONFLICT
    LEDGER_BUSY = "ledger-busy", _WORKFLOW_CONFLICT
    ROLES_SQLITE = "roles-sqlite", _WORKFLOW_CONFLICT
    BAD_LATE_STATEMENT = "bad-late-statement", _LEDGER_INPUT
    LEDGER_EMPTY = "ledger-empty", _VERIFY
    AUTHORITY_NO_BOOTSTRAP = "authority-no-bootstrap", _VERIFY
    AUTHORITY_BOOTSTRAP_LATE = "authority-bootstrap-late", _VERIFY
    AUTHORITY_ROLE_MISSING = "authority-role-missing", _VERIFY
    AUTHORITY_SERVICE_MISSING = "authority-service-missing", _VERIFY
    AUTHORITY_SELF_REVIEW = "authority-self-review", _VERIFY
    AUTHORITY_LAST_ADMIN_REMOVED = "authority-last-admin-removed", _VERIFY
    AUTHORITY_UNEXPECTED_EVENT = "authority-unexpected-event", _VERIFY
    LEDGER_TRIGGER_MISSING = "ledger-trigger-missing", _VERIFY
    LEDGER_TRIGGER_MODIFIED = "ledger-trigger-modified", _VERIFY
    LEDGER_TRIGGER_DISABLED = "ledger-trigger-disabled", _VERIFY
    LEDGER_TRIGGER_UNEXPECTED = "ledger-trigger-unexpected", _VERIFY
    LEDGER_CONNECTED_AS_OWNER = "ledger-connected-as-owner", _VERIFY

    FIX_FILE_TOO_LARGE = "fix-file-too-large", _FIX_INPUT
    FIX_MESSAGE_TOO_LONG = "fix-message-too-long", _FIX_INPUT
    FIX_BEGIN_STRING = "fix-begin-string", _FIX_INPUT
    FIX_BODY_LENGTH = "fix-body-length", _FIX_INPUT
    FIX_CHECKSUM_MISSING = "fix-checksum-missing", _FIX_INPUT
    FIX_CHECKSUM = "fix-checksum", _FIX_INPUT
    FIX_MSG_TYPE = "fix-msg-type", _FIX_INPUT
    FIX_FIELD_SYNTAX = "fix-field-syntax", _FIX_INPUT
    FIX_ENCODING = "fix-encoding", _FIX_INPUT
    FIX_DUPLICATE_TAG = "fix-duplicate-tag", _FIX_INPUT
    FIX_GROUP_COUNT = "fix-group-count", _FIX_INPUT
    FIX_MISSING_TAG = "fix-missing-tag", _FIX_INPUT
    FIX_BAD_VALUE = "fix-bad-value", _FIX_INPUT
    FIX_UNSUPPORTED_MESSAGE = "fix-unsupported-message", _FIX_INPUT
    FIX_UNSUPPORTED_VALUE = "fix-unsupported-value", _FIX_INPUT
    FIX_DUPLICATE_ORDER = "fix-duplicate-order", _FIX_INPUT
    FIX_DUPLICATE_ACCOUNT = "fix-duplicate-account", _FIX_INPUT
    FIX_UNKNOWN_ACCOUNT = "fix-unknown-account", _FIX_INPUT
    FIX_ACCOUNTS_TYPE = "fix-accounts-type", _FIX_INPUT
    FIX_UNKNOWN_ORDER = "fix-unknown-order", _FIX_INPUT
    FIX_ORDER_MISMATCH = "fix-order-mismatch", _FIX_INPUT
    FIX_DUPLICATE_EXEC_ID = "fix-duplicate-exec-id", _FIX_INPUT
    FIX_UNKNOWN_EXEC_REF = "fix-unknown-exec-ref", _FIX_INPUT
    FIX_EXEC_REF_BUSTED = "fix-exec-ref-busted", _FIX_INPUT
    FIX_UNKNOWN_ALLOC_ID = "fix-unknown-alloc-id", _FIX_INPUT
    FIX_IDENTITIES_TYPE = "fix-identities-type", _FIX_INPUT
    FIX_COUNTERPARTY_UNMAPPED = "fix-counterparty-unmapped", _FIX_INPUT
    FIX_ALLOCATION_EXCEEDS_ORDER = "fix-allocation-exceeds-order", _FIX_REFUSAL
    FIX_SETTINGS = "fix-settings", _FIX_FILE
    FIX_SESSION_START = "fix-session-start", _FIX_FILE

    BAD_ROLE_MAP = "bad-role-map", _SERVICE_START
    JWKS_UNREADABLE = "jwks-unreadable", _SERVICE_FILE
    JWKS_INVALID = "jwks-invalid", _SERVICE_FILE
    JWKS_SYMMETRIC_KEY = "jwks-symmetric-key", _SERVICE_FILE
    JWKS_KEY_UNUSABLE = "jwks-key-unusable", _SERVICE_FILE
    POLICIES_NOT_A_FOLDER = "policies-not-a-folder", _SERVICE_FILE
    REQUEST_TYPE = "request-type", _SERVICE_INPUT
    REQUEST_MISSING = "request-missing", _SERVICE_INPUT
    REQUEST_UNKNOWN_FIELD = "request-unknown-field", _SERVICE_INPUT
    REQUEST_PARAMETER = "request-parameter", _SERVICE_INPUT
    POLICY_REFERENCE = "policy-reference", _SERVICE_INPUT
    ORDER_ID_MISMATCH = "order-id-mismatch", _SERVICE_INPUT
    REVIEW_DECISION = "review-decision", _SERVICE_INPUT

    # The forensic review (``fairalloc review``): its codes are dotted, ``forensics.<what>``.
    FORENSICS_BAD_TIMEZONE = "forensics.bad_timezone", _FORENSICS_OPTION
    FORENSICS_BAD_CLOSE_TIME = "forensics.bad_close_time", _FORENSICS_OPTION
    FORENSICS_BAD_FAVOURED = "forensics.bad_favoured", _FORENSICS_GROUP
    FORENSICS_UNKNOWN_ATTRIBUTE = "forensics.unknown_attribute", _FORENSICS_GROUP
    FORENSICS_UNREADABLE = "forensics.unreadable", _FORENSICS_FILE
    FORENSICS_WRITE_FAILED = "forensics.write_failed", _FORENSICS_FILE
    FORENSICS_EMPTY_FILE = "forensics.empty_file", _FORENSICS_INPUT
    FORENSICS_MALFORMED_CSV = "forensics.malformed_csv", _FORENSICS_INPUT
    FORENSICS_MALFORMED_PARQUET = "forensics.malformed_parquet", _FORENSICS_INPUT
    FORENSICS_DUPLICATE_COLUMN = "forensics.duplicate_column", _FORENSICS_INPUT
    FORENSICS_MISSING_COLUMN = "forensics.missing_column", _FORENSICS_INPUT
    FORENSICS_SHORT_ROW = "forensics.short_row", _FORENSICS_INPUT
    FORENSICS_EXTRA_FIELD = "forensics.extra_field", _FORENSICS_INPUT
    FORENSICS_FIELD_TOO_LONG = "forensics.field_too_long", _FORENSICS_INPUT
    FORENSICS_TOO_MANY_ROWS = "forensics.too_many_rows", _FORENSICS_INPUT
    FORENSICS_NO_ROWS = "forensics.no_rows", _FORENSICS_INPUT
    FORENSICS_NO_USABLE_ROWS = "forensics.no_usable_rows", _FORENSICS_INPUT
    FORENSICS_FLOAT_COLUMN = "forensics.float_column", _FORENSICS_INPUT
    FORENSICS_BAD_COLUMN_TYPE = "forensics.bad_column_type", _FORENSICS_INPUT
    FORENSICS_MISSING_VALUE = "forensics.missing_value", _FORENSICS_INPUT
    FORENSICS_BAD_DATE = "forensics.bad_date", _FORENSICS_INPUT
    FORENSICS_BAD_SIDE = "forensics.bad_side", _FORENSICS_INPUT
    FORENSICS_BAD_INTEGER = "forensics.bad_integer", _FORENSICS_INPUT
    FORENSICS_BAD_DECIMAL = "forensics.bad_decimal", _FORENSICS_INPUT
    FORENSICS_BAD_TIMESTAMP = "forensics.bad_timestamp", _FORENSICS_INPUT
    FORENSICS_DUPLICATE_ROW = "forensics.duplicate_row", _FORENSICS_INPUT
    FORENSICS_TOO_LARGE = "forensics.too_large", _FORENSICS_INPUT


class Location(msgspec.Struct, frozen=True):
    """Where a problem is: a position in a text file, a JSON pointer into a document, or both;
    ``tag`` names the FIX field of a FIX message (its line and column are the field's)."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    pointer: str | None = None
    tag: int | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.file)
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        text = ":".join(parts)
        if self.pointer is not None:
            text = f"{text}#{self.pointer}" if text else f"#{self.pointer}"
        if self.tag is not None:
            text = f"{text} (tag {self.tag})" if text else f"tag {self.tag}"
        return text


class Diagnostic(msgspec.Struct, frozen=True):
    """One problem found by a stage: stable code, message, location, fix hint."""

    code: str
    message: str
    location: Location = msgspec.field(default_factory=Location)
    hint: str | None = None

    def render(self) -> str:
        where = str(self.location)
        head = f"{where}: " if where else ""
        text = f"{head}error[{self.code}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "pointer": loc.pointer,
            "tag": loc.tag,
        }


class FairallocError(Exception):
    """Raised by a stage with every diagnostic it collected. ``exit_code`` tells the CLI's status."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic) -> None:
        self.diagnostics: list[Diagnostic] = (
            [diagnostics] if isinstance(diagnostics, Diagnostic) else list(diagnostics)
        )
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]


class PolicyError(FairallocError):
    """The policy file is not a valid policy (structure, expressions, names, types, semantics)."""

    exit_code = ExitCode.INVALID_POLICY


class InputError(FairallocError):
    """A trade document or another input file is malformed."""

    exit_code = ExitCode.INVALID_INPUT


class RefusedError(FairallocError):
    """The input is well-formed but a control refuses it (timing, totals, policy coverage)."""

    exit_code = ExitCode.REFUSED


class LedgerError(FairallocError):
    """The ledger refused a write, found a conflict, or could not be reached."""

    exit_code = ExitCode.LEDGER


class FileAccessError(FairallocError):
    """A file could not be read or written."""

    exit_code = ExitCode.IO


def pointer(parts: tuple[int | str, ...] | list[int | str]) -> str:
    """RFC 6901 JSON pointer for a path (the ``pointer`` of a :class:`Location` in a JSON document)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def distance(a: str, b: str) -> int:
    """Optimal-string-alignment edit distance: insert, delete, substitute, swap neighbours."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name`` if it is close enough to be a likely typo, else None.

    Close enough: case-insensitive equality, or at most one edit per three characters (minimum
    one). Ties go to the alphabetically first candidate, so the hint is deterministic. Every
    "did you mean" of fairalloc (keys, values, names, functions) is this function.
    """
    best: tuple[int, str] | None = None
    limit = max(1, len(name) // 3)
    for candidate in sorted(candidates):
        score = 0 if candidate.lower() == name.lower() else distance(name, candidate)
        if score <= limit and (best is None or score < best[0]):
            best = (score, candidate)
    return best[1] if best else None


def did_you_mean(name: str, candidates: Iterable[str], prefix: str = "") -> str | None:
    """The hint ``did you mean '<prefix><closest>'?``, or ``None`` when nothing is close."""
    match = suggest(name, candidates)
    return f"did you mean '{prefix}{match}'?" if match else None
