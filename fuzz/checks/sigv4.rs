//! Signing then verifying.

use super::*;

/// Sign then verify, on any keys, key names, values and times: accepted
/// from the signing time to the end of the expiry (whole seconds, as the
/// wire carries them), refused a second later, and refused after any
/// single-byte change to the signature.
pub fn sigv4_roundtrip(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let v2 = flags & 1 != 0;
    let expires = Duration::from_secs(u64::from(input.u32()));
    let Some(mut now) = fuzz_time(&mut input) else {
        return;
    };
    if flags & 2 != 0 {
        // Keep the time in SigV4's range (up to year 9999) most of the time.
        let seconds = now.duration_since(UNIX_EPOCH).unwrap().as_secs() % 253_402_300_800;
        now = UNIX_EPOCH + Duration::from_secs(seconds);
    }
    let (at, byte) = (usize::from(input.u16()), input.byte());
    let access_key = input.text();
    let secret_key = input.text();
    let key = input.part().to_vec();
    let mut version = version(v2, expires);
    if let SignatureVersion::V4 {
        region, service, ..
    } = &mut version
    {
        *region = Some(input.text())
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        *service = Some(input.text())
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| "s3".into());
    }
    let body = input.rest().to_vec();
    let signer = Signer::new(Credentials::new(access_key, secret_key), version);

    let method = METHODS[usize::from(flags >> 2) % 3];
    let uri = format!(
        "http://{PROXY_HOST}/redisproxy/v1/SET/{}?n=3&w=2&r=2",
        pct_encode(&key)
    );
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(HOST, PROXY_HOST);
    if method == "PUT" {
        builder = builder.header(CONTENT_LENGTH, body.len());
    }
    let mut request = builder
        .body(if method == "PUT" { body } else { Vec::new() })
        .unwrap();
    let seconds = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let valid_expiry = v2 || (1..=604_800).contains(&expires.as_secs());
    match signer.presign(&mut request, now) {
        Ok(()) => assert!(valid_expiry, "presigned with an expiry verify refuses"),
        Err(error) => {
            assert!(
                !valid_expiry
                    || seconds >= 253_402_300_800
                    || seconds.checked_add(expires.as_secs()).is_none(),
                "{error}"
            );
            return;
        }
    }
    assert_eq!(signer.verify(&request, now), Ok(()));
    let Some(last) = (UNIX_EPOCH + Duration::from_secs(seconds)).checked_add(expires) else {
        return;
    };
    assert_eq!(
        signer.verify(&request, last),
        Ok(()),
        "at the end of the expiry"
    );
    if let Some(later) = last.checked_add(Duration::from_secs(1)) {
        assert_eq!(
            signer.verify(&request, later),
            Err(VerifyError::Expired {
                late: Duration::from_secs(1)
            })
        );
    }

    // One byte of the signature (as sent, decoded) changed.
    let query = request.uri().query().unwrap().to_owned();
    let name = if v2 { "Signature=" } else { "X-Amz-Signature=" };
    let from = query.rfind(name).unwrap() + name.len();
    let mut signature = pct_decode(&query[from..]).unwrap();
    let at = at % signature.len();
    signature[at] = if signature[at] == byte {
        byte ^ 0x20
    } else {
        byte
    };
    let forged = format!(
        "{}?{}{}",
        request.uri().path(),
        &query[..from],
        pct_encode(&signature)
    );
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(forged.parse().unwrap());
    *request.uri_mut() = http::Uri::from_parts(parts).unwrap();
    assert!(
        signer.verify(&request, now).is_err(),
        "a changed signature was accepted"
    );
}
