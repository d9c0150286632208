namespace Identity.BrowserTests.Infrastructure;

/// <summary>
/// A WebAuthn authenticator inside Chromium (DevTools protocol, WebAuthn domain): a platform authenticator that
/// holds discoverable credentials, verifies the user (as a PIN or a fingerprint would) and answers at once.
/// One per page; its credentials die with the page.
/// </summary>
public sealed class VirtualAuthenticator
{
    private readonly ICDPSession _cdp;
    private readonly string _id;

    private VirtualAuthenticator(ICDPSession cdp, string id) => (_cdp, _id) = (cdp, id);

    public static async Task<VirtualAuthenticator> AttachAsync(IPage page)
    {
        var cdp = await page.Context.NewCDPSessionAsync(page);
        await cdp.SendAsync("WebAuthn.enable");
        var added = await cdp.SendAsync("WebAuthn.addVirtualAuthenticator", new Dictionary<string, object>
        {
            ["options"] = new Dictionary<string, object>
            {
                ["protocol"] = "ctap2",
                ["transport"] = "internal",
                ["hasResidentKey"] = true,
                ["hasUserVerification"] = true,
                ["isUserVerified"] = true,
                ["automaticPresenceSimulation"] = true,
            },
        });
        var id = added?.GetProperty("authenticatorId").GetString() ?? throw new InvalidOperationException("No virtual authenticator.");
        return new VirtualAuthenticator(cdp, id);
    }

    /// <summary>The credentials the authenticator holds (a registration adds one).</summary>
    public async Task<int> CredentialCountAsync()
    {
        var result = await _cdp.SendAsync("WebAuthn.getCredentials", new Dictionary<string, object> { ["authenticatorId"] = _id });
        return result?.GetProperty("credentials").GetArrayLength() ?? 0;
    }
}
