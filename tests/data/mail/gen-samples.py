import base64, random, os
import os
D = os.path.dirname(os.path.abspath(__file__))
random.seed(42)
def b64(n):
    data = bytes(random.getrandbits(8) for _ in range(n))
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i+76] for i in range(0, len(s), 76))
def w(name, text, crlf=True):
    text = text.lstrip("\n") if isinstance(text, str) else text.lstrip(b"\n")
    data = text.encode("utf-8") if isinstance(text, str) else text
    if crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    open(os.path.join(D, name + ".eml"), "wb").write(data)

w("plain", """
Return-Path: <alice@example.com>
Received: from mail.example.com (mail.example.com [192.0.2.1])
	by inbound-smtp.us-east-1.amazonaws.com with SMTP id abc123
	for bob@example.org; Tue, 03 Mar 2026 09:15:02 +0000 (UTC)
From: Alice Example <alice@example.com>
To: Bob <bob@example.org>, carol@example.net
Cc: "Dave (ops)" <dave@example.org>
Subject: Lunch on Thursday?
Date: Tue, 3 Mar 2026 10:15:00 +0100
Message-ID: <20260303091500.1234@mail.example.com>

Hi Bob,

are you free for lunch on Thursday? The usual place at noon.

Alice
""")

w("alternative", """
From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>
To: bob@example.org
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=
Date: Wed, 4 Mar 2026 08:00:00 +0100
Message-ID: <alt-1@example.de>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-boundary-1"

This is a multi-part message in MIME format.
--alt-boundary-1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hallo Bob,

viele Gr=C3=BC=C3=9Fe aus M=C3=BCnchen! Das Wetter ist sch=C3=B6n und die=
 Stra=C3=9Fen sind voller Leute.

J=C3=BCrgen
--alt-boundary-1
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<html><body><p>Hallo Bob,</p><p>viele Gr=C3=BC=C3=9Fe aus M=C3=BCnchen!</p=
></body></html>
--alt-boundary-1--
""")

w("mixed-attachment", """
From: Reports <reports@example.com>
To: bob@example.org
Subject: Monthly report
Date: Thu, 5 Mar 2026 12:00:00 -0500
Message-ID: <report-2026-03@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=MIXED_42

--MIXED_42
Content-Type: text/plain; charset=us-ascii

Please find the March report attached.
The searchable phrase is purple elephant.

--MIXED_42
Content-Type: application/pdf; name="report-march.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report-march.pdf"; size=3000
Content-ID: <part2.report@example.com>
Content-Description: The March report
Content-Language: en, de
Content-Location: http://example.com/report.pdf
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

""" + b64(3000) + """
--MIXED_42--
""")

inner = """From: Carol <carol@example.net>
To: Alice Example <alice@example.com>
Subject: Original message
Date: Mon, 2 Mar 2026 17:30:00 +0000
Message-ID: <orig-99@example.net>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner-alt"

--inner-alt
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 au lait for everyone. Needle: zebra crossing.
--inner-alt
Content-Type: text/html; charset=iso-8859-1

<p>Caf\xe9 au lait</p>
--inner-alt--
"""
w("nested-rfc822", ("""
From: Alice Example <alice@example.com>
To: bob@example.org
Subject: Fwd: Original message
Date: Tue, 3 Mar 2026 11:00:00 +0000
Message-ID: <fwd-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="outer-alt"

--outer-alt
Content-Type: text/plain; charset=utf-8

See the forwarded message below.
--outer-alt
Content-Type: text/html; charset=utf-8

<p>See the forwarded message below.</p>
--outer-alt--

--outer
Content-Type: message/rfc822
Content-Disposition: attachment; filename="original.eml"

""" + inner + """
--outer
Content-Type: image/png; name=dot.png
Content-Transfer-Encoding: base64

iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==
--outer--
""").encode("latin-1"))

w("lf-only", """
From: Unix User <user@example.org>
To: bob@example.org
Subject: LF only line endings
Date: 6 Mar 2026 07:07:07 GMT
Message-ID: <lf-only@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="lfb"

preamble text
--lfb   
Content-Type: text/plain

first part
with two lines
--lfb\t
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

second part: caf\u00e9
--lfb--
epilogue
""", crlf=False)

w("missing-final-boundary", """
From: Broken Mailer <noreply@example.com>
To: bob@example.org
Subject: missing close delimiter
Date: Sat, 7 Mar 2026 01:02:03 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="never-closed"

--never-closed
Content-Type: text/plain

part one
--never-closed
Content-Type: text/plain

part two runs to the end of the file
and has no close delimiter
""")

w("encoded-subjects", ("""
From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>
To: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>
Cc: =?windows-1252?Q?Fran=E7ois_=96_Caf=E9?= <f@example.fr>
Subject: =?UTF-8?B?8J+SoSBJZGVlbjog?= =?ISO-8859-15?Q?=A4uro_Pr=E4mie?=
 =?utf-8?q?_f=C3=BCr_alle?=
Date: Sun, 08 Mar 2026 22:10:00 +0900
Message-ID: <enc-1@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Voil=E0 le r=E9sum=E9 de la r=E9union. Tr=E8s int=E9ressant.
""").encode("latin-1"))

w("groups", """
From: "Doe, John" <john.doe@example.com>
Sender: secretary@example.com
Reply-To: Team Replies: replies@example.com, "Smith, J." <js@example.com>;
To: undisclosed-recipients:;
Cc: Friends: alice@example.com, Bob <bob@example.org>;, carol@example.net (Carol C)
Bcc: <@route1,@route2:hidden@example.com>
Subject: "Quoted" \\ subject with	tab
Date: Mon, 9 Mar 2026 09:00 -0800 (PST)
In-Reply-To: <prev-1@example.com>
Message-ID: <groups-1@example.com>

Group addresses test.
""")

w("ios", """
Content-Type: multipart/alternative; boundary=Apple-Mail-5F3A2C1B-8D4E-4A6F-9B2C-1E7D3F9A0B1C
Content-Transfer-Encoding: 7bit
From: Bob Mobile <bob@icloud.example>
Mime-Version: 1.0 (1.0)
Date: Tue, 10 Mar 2026 18:42:13 +0100
Subject: Re: Lunch on Thursday?
Message-Id: <8D4E4A6F-9B2C-1E7D-3F9A-0B1C5F3A2C1B@icloud.example>
References: <20260303091500.1234@mail.example.com>
In-Reply-To: <20260303091500.1234@mail.example.com>
To: Alice Example <alice@example.com>
X-Mailer: iPhone Mail (21E236)


--Apple-Mail-5F3A2C1B-8D4E-4A6F-9B2C-1E7D3F9A0B1C
Content-Type: text/plain;
	charset=utf-8
Content-Transfer-Encoding: quoted-printable

Sure, see you there =F0=9F=91=8D

Sent from my iPhone

> On 3. Mar 2026, at 10:15, Alice Example <alice@example.com> wrote:
>=20
> =EF=BB=BFHi Bob,
--Apple-Mail-5F3A2C1B-8D4E-4A6F-9B2C-1E7D3F9A0B1C
Content-Type: text/html;
	charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><head><meta http-equiv=3D"content-type" content=3D"text/html; charset=3D=
utf-8"></head><body dir=3D"auto">Sure, see you there =F0=9F=91=8D</body></html>=

--Apple-Mail-5F3A2C1B-8D4E-4A6F-9B2C-1E7D3F9A0B1C--
""")

w("thunderbird", """
Message-ID: <3b1f2c4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f@example.org>
Date: Wed, 11 Mar 2026 14:05:27 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Content-Language: en-US
To: Alice Example <alice@example.com>
From: Bob <bob@example.org>
Subject: Photos from the trip
Content-Type: multipart/mixed;
 boundary="------------Xy12AbCdEfGh34IjKlMn"

This is a multi-part message in MIME format.
--------------Xy12AbCdEfGh34IjKlMn
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

Hi Alice,

here are the photos — enjoy!

Bob

--------------Xy12AbCdEfGh34IjKlMn
Content-Type: image/jpeg;
 name*0*=UTF-8''%E2%82%AC%20%C3%BCberraschung%20mit%20einem%20sehr%20la;
 name*1*=%6E%67%65%6E%20Namen.jpg
Content-Disposition: attachment;
 filename*0*=UTF-8''%E2%82%AC%20%C3%BCberraschung%20mit%20einem%20sehr%20la;
 filename*1*=%6E%67%65%6E%20Namen.jpg
Content-Transfer-Encoding: base64

""" + b64(600) + """

--------------Xy12AbCdEfGh34IjKlMn--
""")

w("gmail", """
Delivered-To: bob@example.org
Received: by 2002:a05:6a10:1234:b0:123:4567:89ab with SMTP id abc;
        Thu, 12 Mar 2026 03:04:05 -0700 (PDT)
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
        d=gmail.com; s=20230601; t=1773309845; x=1773914645;
        h=to:subject:message-id:date:from:mime-version:from:to:cc:subject
         :date:message-id:reply-to;
        bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
        b=AbCdEf0123456789
MIME-Version: 1.0
References: <CAKx1=abc@mail.gmail.com>
	<CAKx2=def@mail.gmail.com>
In-Reply-To: <CAKx2=def@mail.gmail.com>
From: Gina Mail <gina.mail@gmail.com>
Date: Thu, 12 Mar 2026 11:04:05 +0100
Message-ID: <CAKx3=ghi+JKL@mail.gmail.com>
Subject: Re: Plans for the weekend
To: Bob <bob@example.org>
Cc: alice@example.com
Content-Type: multipart/alternative; boundary="0000000000001a2b3c05f1e2d3c4"

--0000000000001a2b3c05f1e2d3c4
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: base64

SGkgQm9iLAoKU2F0dXJkYXkgd29ya3MgZm9yIG1lLiBMZXQncyBtZWV0IGF0IHRoZSBtYXJrZXQg
YXQgMTAuCgpHaW5hCg==
--0000000000001a2b3c05f1e2d3c4
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Hi Bob,<div><br></div><div>Saturday works for me. Let&#39;=
s meet at the market at 10.</div></div>

--0000000000001a2b3c05f1e2d3c4--
""")

w("digest", """
From: list-request@example.com
To: subscribers@example.com
Subject: Example list digest, Vol 1, Issue 2
Date: Fri, 13 Mar 2026 00:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/digest; boundary="DIGEST"

--DIGEST

From: one@example.com
Subject: first digest entry

Body of the first entry.

--DIGEST
Content-Type: text/plain

A plain part inside the digest.
--DIGEST

From: two@example.com
Subject: second digest entry
Content-Type: text/plain; charset=utf-8

Body of the second entry.
--DIGEST--
""")

w("edge-cases", ("""
From:
To: Bob <bob@example.org>, broken@, <>, "Only Name"
Subject: first subject
Subject: second  subject   with   spaces\x20\x20
Subject: =?utf-8?q?ignored?=
Date: Sat, 14 Mar 2026 12:00:00 +0000
Message-ID:
 <folded-message-id@example.com>
In-Reply-To: <a@example.com> (comment)
Content-Type: multipart/mixed; boundary=EDGE
Content-Transfer-Encoding: 8bit

--EDGE
Content-Type: text

no subtype
--EDGE
Content-Type: garbage

garbage type
--EDGE
Content-Type: multipart/related

multipart without a boundary parameter
--EDGE
Content-Type: message/global

From: g@example.com
Subject: global

global body
--EDGE
Content-Type: TEXT/Plain; Charset="ISO-8859-1" ; format=flowed; x-empty=""; weird="a\\"b"
Content-Disposition: INLINE; FileName=note.txt
Content-ID:   <spaced-id@example.com>  

8-bit subject test: \xe9t\xe9
--EDGE
Content-Type: application/octet-stream
--EDGE
Content-Type: text/plain; name*0="long"; name*1="name.txt"; title*0*=us-ascii'en'a%20; title*1=b%c

rfc 2231
--EDGE--
""").encode("latin-1"))

w("no-mime-version", """
From: legacy@example.com
To: bob@example.org
Subject: Content-Type without MIME-Version
Date: Sun, 15 Mar 2026 10:00:00 +0000
Content-Type: multipart/mixed; boundary="nomv"

--nomv
Content-Type: text/plain

inside
--nomv--
""")

w("no-content-type", """
From: old@example.com
To: bob@example.org
Subject: headers only, CTE ignored
Date: 16 Mar 26 10:00 EST
Content-Transfer-Encoding: base64
Content-ID: <ignored@example.com>

plain old text
""")

w("headers-only", """
From: x@example.com
Subject: no body at all
Date: Tue, 17 Mar 2026 10:00:00 +0000""")

w("utf8-headers", """
From: Zoë Ångström <zoe@example.se>
To: Bjørn <bjorn@example.no>
Subject: Smörgåsbord für alle 🙂
Date: Wed, 18 Mar 2026 10:00:00 +0100
Message-ID: <utf8@example.se>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Räksmörgås med ägg.
""")
