//! AWS Secrets Manager against moto with SigV4 and IAM enforced after setup.

use flowstudio_host::secrets::{AwsSecretsManagerConfig, AwsSecretsManagerProvider, Freshness, SecretError, SecretReference, SecretsProvider};
use flowstudio_host::secret::Secret;
use flowstudio_tests::secrets::*;

fn provider(moto: &Moto, keys: &AwsKeys) -> AwsSecretsManagerProvider {
    let config = AwsSecretsManagerConfig {
        access_key_id: Some(keys.access_key_id.clone()),
        secret_access_key: Some(Secret::new(keys.secret_access_key.clone())),
        endpoint: Some(moto.endpoint()),
        ..Default::default()
    };
    AwsSecretsManagerProvider::with_env(Some(&config), |_| None)
}

fn reference(secret_id: &str, json_key: Option<&str>) -> SecretReference {
    SecretReference::AwsSecretsManager { region: MOTO_REGION.into(), secret_id: secret_id.into(), version_stage: None, json_key: json_key.map(str::to_string) }
}

#[tokio::test]
async fn a_signed_read_returns_the_value_and_its_version() {
    let moto = Moto::start().await;
    let aws = provider(&moto, &moto.reader);
    let read = aws.read(&reference(MOTO_PLAIN_SECRET, None), Freshness::Cached).await.expect("read");
    assert_eq!(read.value.expose(), AWKWARD_SECRET);
    let version = read.version.expect("VersionId");
    assert_eq!(version.len(), 36, "moto's VersionId is a uuid: {version}");

    let staged = SecretReference::AwsSecretsManager {
        region: MOTO_REGION.into(),
        secret_id: MOTO_PLAIN_SECRET.into(),
        version_stage: Some("AWSCURRENT".into()),
        json_key: None,
    };
    assert_eq!(aws.read(&staged, Freshness::Cached).await.expect("staged").version.as_deref(), Some(version.as_str()));

    let binary = aws.read(&reference(MOTO_BINARY_SECRET, None), Freshness::Cached).await.expect("binary");
    assert_eq!(binary.value.expose(), AWKWARD_SECRET);
}

#[tokio::test]
async fn a_json_key_picks_one_field_and_a_missing_key_is_not_found() {
    let moto = Moto::start().await;
    let aws = provider(&moto, &moto.reader);
    let read = aws.read(&reference(MOTO_JSON_SECRET, Some("client_secret")), Freshness::Cached).await.expect("read");
    assert_eq!(read.value.expose(), AWKWARD_SECRET);

    let missing = aws.read(&reference(MOTO_JSON_SECRET, Some("password")), Freshness::Cached).await.unwrap_err();
    assert!(matches!(missing, SecretError::NotFound { .. }), "{missing:?}");
    assert!(missing.to_string().contains("#password"), "the error names the key: {missing}");
    let not_object = aws.read(&reference(MOTO_PLAIN_SECRET, Some("client_secret")), Freshness::Cached).await.unwrap_err();
    assert!(matches!(not_object, SecretError::Invalid { .. }), "{not_object:?}");
    for error in [&missing, &not_object] {
        assert_redacted(error, &[AWKWARD_SECRET, &moto.reader.secret_access_key]);
    }
}

#[tokio::test]
async fn not_found_denied_and_bad_signature_are_distinct_errors() {
    let moto = Moto::start().await;
    let secrets = [AWKWARD_SECRET, moto.reader.secret_access_key.as_str(), moto.nobody.secret_access_key.as_str()];

    let missing = provider(&moto, &moto.reader).read(&reference("no/such/secret", None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(missing, SecretError::NotFound { .. }), "{missing:?}");

    // A real IAM user without a policy: moto checks the signature, then the permission.
    let denied = provider(&moto, &moto.nobody).read(&reference(MOTO_PLAIN_SECRET, None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(&denied, SecretError::AccessDenied { reason, .. } if reason.contains("AccessDenied")), "{denied:?}");

    // The reader's key id with a wrong secret key: the signature does not match.
    let forged = AwsKeys { access_key_id: moto.reader.access_key_id.clone(), secret_access_key: "not-the-key".into() };
    let bad_signature = provider(&moto, &forged).read(&reference(MOTO_PLAIN_SECRET, None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(&bad_signature, SecretError::AccessDenied { reason, .. } if reason.contains("Signature")), "{bad_signature:?}");

    // An access key moto never issued.
    let stranger = AwsKeys { access_key_id: "AKIAUNKNOWNUNKNOWN00".into(), secret_access_key: "x".into() };
    let unknown = provider(&moto, &stranger).read(&reference(MOTO_PLAIN_SECRET, None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(unknown, SecretError::AccessDenied { .. }), "{unknown:?}");

    for error in [&missing, &denied, &bad_signature, &unknown] {
        assert_redacted(error, &secrets);
    }
}

#[tokio::test]
async fn credentials_fall_back_to_the_environment_and_their_absence_is_named() {
    let moto = Moto::start().await;
    let config = AwsSecretsManagerConfig { endpoint: Some(moto.endpoint()), ..Default::default() };
    let (id, key) = (moto.reader.access_key_id.clone(), moto.reader.secret_access_key.clone());
    let from_env = AwsSecretsManagerProvider::with_env(Some(&config), move |name| match name {
        "AWS_ACCESS_KEY_ID" => Some(id.clone()),
        "AWS_SECRET_ACCESS_KEY" => Some(key.clone()),
        _ => None,
    });
    assert_eq!(from_env.read(&reference(MOTO_PLAIN_SECRET, None), Freshness::Cached).await.expect("read").value.expose(), AWKWARD_SECRET);
    assert_no_secret(&format!("{from_env:?}"), &[&moto.reader.secret_access_key]);

    let none = AwsSecretsManagerProvider::with_env(Some(&config), |_| None);
    let error = none.read(&reference(MOTO_PLAIN_SECRET, None), Freshness::Cached).await.unwrap_err();
    assert!(matches!(&error, SecretError::NotConfigured { reason, .. } if reason.contains("AWS_ACCESS_KEY_ID") && reason.contains("access-key-id")), "{error:?}");
}
