namespace Identity.BrowserTests.Infrastructure;

/// <summary>
/// The same world with Identity at <c>http://localhost:{port}/</c>: WebAuthn relying-party IDs are domains, never IP
/// addresses, so a browser refuses passkeys at 127.0.0.1 (Identity then hides its passkey buttons). The issuer's host
/// becomes the relying-party ID (<c>Passkeys:ServerDomain</c> defaults to it); the regional apps stay at 127.0.0.1,
/// so no cookie is shared with them. http://localhost is a secure context, where browsers offer WebAuthn.
/// </summary>
public sealed class PasskeyFixture() : RegionsFixture(KestrelHost.Localhost);

/// <summary>The passkey tests: one collection of their own, sharing one <see cref="PasskeyFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class PasskeySuite : ICollectionFixture<PasskeyFixture>
{
    public const string Name = "Passkeys";
}
