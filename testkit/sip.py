"""Phones that try what an attacker or a careless user would: register with a wrong password, dial
an outside number from a seat. Each is one SIPp run on :class:`hotline.simulate.sipp.SippRunner`
whose exit code says whether Asterisk answered as expected (0) or not.
"""

from __future__ import annotations

from typing import Literal

from hotline.simulate.sipp import SippProcess, SippRunner

# REGISTER, the challenge, REGISTER with the (wrong) credentials: Asterisk must refuse again
REGISTER_REFUSED = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="register refused">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[service]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Expires: 60
      Content-Length: 0
    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:[service]@[local_ip]:[local_port]>
      [authentication]
      Max-Forwards: 70
      Expires: 60
      Content-Length: 0
    ]]>
  </send>
  <recv response="401" optional="true" next="refused"/>
  <recv response="403" next="refused"/>
  <label id="refused"/>
</scenario>
"""

_INVITE = """
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:@USER@@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: @CSEQ@ INVITE
      Contact: <sip:@USER@@[local_ip]:[local_port]>
      @AUTH@
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=seat 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=sendrecv
"""

# the ACK of a final error answer belongs to the INVITE's transaction: its Via (branch) and tags
_ACK_ERROR = """
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: @CSEQ@ ACK
      Max-Forwards: 70
      Content-Length: 0
"""

_ENDINGS = {
    # refused: early media (the refusal said) may come first, then 403 Forbidden
    "refused": """
  <recv response="403"/>
  <send><![CDATA[{ack}]]></send>
""",
    # answered: talk a second, then hang up
    "answered": """
  <recv response="200" rtd="true">
    <action><ereg regexp="(sip:[^>]+)" search_in="hdr" header="Contact:" assign_to="junk,peer_contact"/></action>
  </recv>
  <send>
    <![CDATA[
      ACK [$peer_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:@USER@@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <pause milliseconds="1000"/>
  <send retrans="500">
    <![CDATA[
      BYE [$peer_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:@USER@@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
  <Reference variables="junk"/>
""",
}


def dial_scenario(user: str, expect: Literal["refused", "answered"]) -> str:
    """A seat's phone dialling [service] with digest auth: INVITE, 401, ACK, INVITE with credentials."""
    first = _INVITE.replace("@CSEQ@", "1").replace("      @AUTH@\n", "")
    second = _INVITE.replace("@CSEQ@", "2").replace("@AUTH@", "[authentication]")
    ending = _ENDINGS[expect].format(ack=_ACK_ERROR.replace("@CSEQ@", "2"))
    ack_challenge = _ACK_ERROR.replace("@CSEQ@", "1")
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="seat dials {expect}">
  <send retrans="500"><![CDATA[{first}]]></send>
  <recv response="100" optional="true"/>
  <recv response="401" auth="true"/>
  <send><![CDATA[{ack_challenge}]]></send>
  <send retrans="500"><![CDATA[{second}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
{ending}
</scenario>
"""
    return body.replace("@USER@", user)


def registration_refused(phones: SippRunner, user: str, password: str, timeout: float = 10) -> bool:
    """True when Asterisk refuses ``user``/``password`` (401/403 after the credentials), False when it
    accepts them (or does not answer)."""
    proc = phones.start(f"reg-refused-{user}", REGISTER_REFUSED,
                        ["-s", user, "-au", user, "-ap", password, "-p", phones.port(5300), "-m", 1,
                         "-timeout", f"{int(timeout)}s"])
    return proc.wait(timeout + 5) == 0


def dial(phones: SippRunner, user: str, password: str, number: str,
         expect: Literal["refused", "answered"]) -> SippProcess:
    """``user``'s phone dials ``number``; the process exits 0 when the call went as ``expect``-ed."""
    return phones.start(f"dial-{user}-{number}", dial_scenario(user, expect),
                        ["-s", number, "-au", user, "-ap", password, "-p", phones.port(5400),
                         "-mp", phones.port(16400, 4), "-m", 1, "-timeout", "30s"])
