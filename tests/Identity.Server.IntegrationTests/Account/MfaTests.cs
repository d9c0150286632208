using System.Net;
using System.Text.RegularExpressions;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.IdentityModel.Tokens;
using OtpNet;

namespace Identity.Server.IntegrationTests.Account;

/// <summary>TOTP enrollment and sign-in, single-use codes, recovery codes, and acr_values step-up; amr/acr in the ID token.</summary>
public sealed partial class MfaTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Password = "Correct-Horse-Battery-9";
    private const string Redirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";

    private static string Code(string secret, DateTime at) => new Totp(Base32Encoding.ToBytes(secret)).ComputeTotp(at);

    /// <summary>A new user (a member of <paramref name="account"/>, if given), signed in with a password.</summary>
    private async Task<(string Email, BrowserSession Browser)> SignedInUserAsync(Guid? account = null)
    {
        var email = $"mfa-{Guid.NewGuid():n}@example.test";
        await fixture.CreateUserAsync(email, Password, account);
        var browser = new BrowserSession(fixture.Server);
        await browser.SignInAsync("/Account/Login", email, Password);
        return (email, browser);
    }

    /// <summary>A new user who signs in with a password and enrolls an authenticator; returns the secret and recovery codes.</summary>
    private async Task<(string Email, string Secret, List<string> RecoveryCodes)> EnrolledUserAsync(Guid? account = null)
    {
        var (email, browser) = await SignedInUserAsync(account);

        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/Totp"), HttpStatusCode.OK);
        var secret = SecretOnPage().Match(page).Groups[1].Value;
        Assert.Contains("<svg", page, StringComparison.Ordinal); // QR code rendered server-side
        var enrolled = await browser.SubmitAsync("/Account/Totp", page, new Dictionary<string, string> { ["code"] = Code(secret, DateTime.UtcNow.AddSeconds(-30)) });
        var html = await ResponseAssert.HtmlAsync(enrolled, HttpStatusCode.OK);
        var codes = RecoveryCodeOnPage().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(10, codes.Count);
        return (email, secret, codes);
    }

    /// <summary>A new account with the given settings (JSON of <c>PUT /admin/v1/accounts/{id}/settings</c>).</summary>
    private async Task<Guid> AccountAsync(string name, string settingsJson)
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts",
            $$"""{"name":"{{name}} {{Guid.NewGuid():n}}"}"""), HttpStatusCode.Created)).GetProperty("id").GetGuid();
        await SettingsAsync(account, settingsJson);
        return account;
    }

    private async Task SettingsAsync(Guid account, string settingsJson)
    {
        var platform = await fixture.PlatformAdminAsync();
        var etag = (await platform.GetAsync($"/admin/v1/accounts/{account}")).Headers.ETag!.Tag;
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/accounts/{account}/settings", settingsJson, etag),
            HttpStatusCode.OK);
    }

    private async Task<(BrowserSession Browser, HttpResponseMessage Response)> PasswordStepAsync(string email)
    {
        var browser = new BrowserSession(fixture.Server);
        var response = await browser.SignInAsync("/Account/Login?ReturnUrl=%2F", email, Password);
        return (browser, response);
    }

    private static Task<HttpResponseMessage> SecondStepAsync(BrowserSession browser, string handler, string field, string value) =>
        browser.Http.GetAsync("/Account/TwoFactor?ReturnUrl=%2F").ContinueWith(async page =>
            await browser.SubmitAsync($"/Account/TwoFactor?handler={handler}", await (await page).Content.ReadAsStringAsync(),
                new Dictionary<string, string> { [field] = value })).Unwrap();

    [Fact]
    public async Task SignIn_WithTotp_AsksForCodeAndIssuesMfaAmrAndAcr()
    {
        var (email, secret, _) = await EnrolledUserAsync();

        var (browser, afterPassword) = await PasswordStepAsync(email);
        Assert.StartsWith("/Account/TwoFactor", BrowserSession.Location(afterPassword).OriginalString, StringComparison.Ordinal);
        Assert.Contains("autocomplete=\"one-time-code\"", await (await browser.GetAsync("/Account/TwoFactor")).Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var done = await SecondStepAsync(browser, "Totp", "code", Code(secret, DateTime.UtcNow));
        Assert.Equal("/", BrowserSession.Location(done).OriginalString);

        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await browser.AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge), email, Password);
        var tokens = await ResponseAssert.StatusAsync(
            await fixture.Client.RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
        var payload = System.Text.Json.JsonDocument.Parse(Base64UrlEncoder.Decode(tokens.GetProperty("id_token").GetString()!.Split('.')[1])).RootElement;
        Assert.True(payload.GetProperty("amr").GetArrayLength() == 3, payload.ToString());
        Assert.Equal(["pwd", "otp", "mfa"], payload.GetProperty("amr").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("urn:identity:acr:mfa", payload.GetProperty("acr").GetString());
    }

    [Fact]
    public async Task AllowedFactors_TotpAndRecoveryNotAllowed_NeitherSignsIn()
    {
        var account = await AccountAsync("Factors", """{"mfa":{"requirement":"optional"}}""");
        var (email, secret, recovery) = await EnrolledUserAsync(account);
        await SettingsAsync(account, """{"mfa":{"requirement":"optional","allowedFactors":["passkey"]}}""");

        var (browser, _) = await PasswordStepAsync(email);
        var totp = await SecondStepAsync(browser, "Totp", "code", Code(secret, DateTime.UtcNow));
        var (other, _) = await PasswordStepAsync(email);
        var code = await SecondStepAsync(other, "Recovery", "recovery", recovery[0]);

        Assert.NotEqual(HttpStatusCode.Redirect, totp.StatusCode);
        Assert.NotEqual(HttpStatusCode.Redirect, code.StatusCode);
    }

    [Fact]
    public async Task AllowedFactors_OnlyPasskeys_TotpPageOffersNothingAndForcedEnrolmentGoesToPasskeys()
    {
        var account = await AccountAsync("Passkeys only", """{"mfa":{"requirement":"requiredForEveryone","allowedFactors":["passkey"]}}""");
        var (_, browser) = await SignedInUserAsync(account);

        // Required MFA and no factor yet: enrolment first, on the passkeys page, which comes back to the sign-in.
        var (_, challenge) = BrowserSession.Pkce();
        var enrol = BrowserSession.Location(await browser.GetAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge))).OriginalString;
        Assert.StartsWith("/Account/Passkeys?ReturnUrl=", enrol, StringComparison.Ordinal);
        var passkeys = await ResponseAssert.HtmlAsync(await browser.GetAsync(enrol), HttpStatusCode.OK);
        Assert.Contains("data-passkey=\"create\"", passkeys, StringComparison.Ordinal);
        Assert.Contains("href=\"/connect/authorize?", passkeys, StringComparison.Ordinal); // "Done" returns to the sign-in

        // The authenticator-app page shows no key and turns nothing on.
        var totp = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/Totp"), HttpStatusCode.OK);
        Assert.Contains(Identity.Server.Account.TotpModel.NotAllowedMessage, totp, StringComparison.Ordinal);
        Assert.DoesNotMatch(SecretOnPage(), totp);
        // A crafted post (the page has no form; the anti-forgery token taken from the passkeys page) turns nothing on either.
        var posted = await browser.SubmitAsync("/Account/Totp", passkeys, new Dictionary<string, string> { ["code"] = "123456" });
        Assert.Contains(Identity.Server.Account.TotpModel.NotAllowedMessage, await ResponseAssert.HtmlAsync(posted, HttpStatusCode.OK), StringComparison.Ordinal);
        Assert.DoesNotContain("Authenticator app", await ResponseAssert.HtmlAsync(await browser.GetAsync("/"), HttpStatusCode.OK), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AllowedFactors_OnlyTotp_PasskeysPageAddsNone()
    {
        var account = await AccountAsync("TOTP only", """{"mfa":{"requirement":"optional","allowedFactors":["totp"]}}""");
        var (_, browser) = await SignedInUserAsync(account);

        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/Passkeys"), HttpStatusCode.OK);
        // The page has no form to take an anti-forgery token from (nothing to add, nothing to remove): the TOTP page's
        // token is the same user's, so the request reaches the handler and is refused by the policy, not by anti-forgery.
        var totpPage = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/Totp"), HttpStatusCode.OK);
        var options = await browser.SubmitAsync("/Account/Passkeys?handler=Options", totpPage, new Dictionary<string, string>());

        Assert.Contains(Identity.Server.Account.PasskeysModel.NotAllowedMessage, page, StringComparison.Ordinal);
        Assert.DoesNotContain("data-passkey=\"create\"", page, StringComparison.Ordinal);
        // No creation options, so no ceremony can start: a 403 problem for the page's script, not a redirect.
        Assert.Equal(HttpStatusCode.Forbidden, options.StatusCode);
        Assert.Equal("application/problem+json", options.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("Passkeys</a>", await ResponseAssert.HtmlAsync(await browser.GetAsync("/"), HttpStatusCode.OK), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TotpCode_UsedTwice_RefusedTheSecondTime()
    {
        var (email, secret, _) = await EnrolledUserAsync();
        var code = Code(secret, DateTime.UtcNow);

        var (first, _) = await PasswordStepAsync(email);
        var accepted = await SecondStepAsync(first, "Totp", "code", code);
        var (second, _) = await PasswordStepAsync(email);
        var replayed = await SecondStepAsync(second, "Totp", "code", code);

        Assert.Equal(HttpStatusCode.Redirect, accepted.StatusCode);
        Assert.Contains("Invalid code.", await ResponseAssert.HtmlAsync(replayed, HttpStatusCode.OK), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RecoveryCode_WorksOnceOnly()
    {
        var (email, _, codes) = await EnrolledUserAsync();

        var (first, _) = await PasswordStepAsync(email);
        var accepted = await SecondStepAsync(first, "Recovery", "recovery", codes[3].ToUpperInvariant());
        var (second, _) = await PasswordStepAsync(email);
        var reused = await SecondStepAsync(second, "Recovery", "recovery", codes[3]);

        Assert.Equal(HttpStatusCode.Redirect, accepted.StatusCode);
        Assert.Contains("Invalid code.", await ResponseAssert.HtmlAsync(reused, HttpStatusCode.OK), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SecondStep_LocalReturnUrlWithNonAscii_FollowedEncodedWithASession()
    {
        var (email, _, codes) = await EnrolledUserAsync();
        var browser = new BrowserSession(fixture.Server);
        var afterPassword = await browser.SignInAsync("/Account/Login?ReturnUrl=%2Fcaf%C3%A9", email, Password);
        var twoFactor = BrowserSession.Location(afterPassword).OriginalString;
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync(twoFactor), HttpStatusCode.OK);

        var done = await browser.SubmitAsync("/Account/TwoFactor?handler=Recovery", page, new Dictionary<string, string> { ["recovery"] = codes[0] });

        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        Assert.Equal("/caf%C3%A9", BrowserSession.Location(done).OriginalString);
        Assert.Contains(done.Headers.GetValues("Set-Cookie"), c => c.StartsWith("identity.session", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WrongCode_NeverSignsIn_AndNoSessionBeforeTheSecondFactor()
    {
        var (email, _, _) = await EnrolledUserAsync();

        var (browser, _) = await PasswordStepAsync(email);
        var wrong = await SecondStepAsync(browser, "Totp", "code", "000000");
        var (_, challenge) = BrowserSession.Pkce();
        var authorize = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge));

        Assert.Contains("Invalid code.", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("/Account/Login", BrowserSession.Location(authorize).OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AcrValuesMfa_InsidePasswordOnlySession_AsksForSecondFactor()
    {
        // Enrolled during a password-only session: that session is still "pwd" until it steps up.
        var email = $"stepup-{Guid.NewGuid():n}@example.test";
        await fixture.CreateUserAsync(email, Password);
        var browser = new BrowserSession(fixture.Server);
        await browser.SignInAsync("/Account/Login", email, Password);
        var page = await browser.GetAsync("/Account/Totp");
        var html = await page.Content.ReadAsStringAsync();
        var secret = SecretOnPage().Match(html).Groups[1].Value;
        await browser.SubmitAsync("/Account/Totp", html, new Dictionary<string, string> { ["code"] = Code(secret, DateTime.UtcNow.AddSeconds(-30)) });

        var (_, challenge) = BrowserSession.Pkce();
        var plain = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge));
        var stepUp = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("acr_values", "urn:identity:acr:mfa")));

        Assert.StartsWith(Redirect, BrowserSession.Location(plain).AbsoluteUri, StringComparison.Ordinal);
        Assert.StartsWith("/Account/TwoFactor", BrowserSession.Location(stepUp).OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResetMfa_ByAdmin_RemovesTheFactorAndEndsSessions()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", "{\"name\":\"Reset Co\"}"),
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var email = $"reset-{Guid.NewGuid():n}@example.test";
        var userId = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $"{{\"email\":\"{email}\",\"role\":\"member\",\"password\":\"{Password}\"}}"), HttpStatusCode.Created))
            .GetProperty("user").GetProperty("id").GetString();
        var browser = new BrowserSession(fixture.Server);
        await browser.SignInAsync("/Account/Login", email, Password);
        var html = await (await browser.GetAsync("/Account/Totp")).Content.ReadAsStringAsync();
        await browser.SubmitAsync("/Account/Totp", html, new Dictionary<string, string> { ["code"] = Code(SecretOnPage().Match(html).Groups[1].Value, DateTime.UtcNow) });
        Assert.StartsWith("/Account/TwoFactor", BrowserSession.Location((await PasswordStepAsync(email)).Response).OriginalString, StringComparison.Ordinal);

        var reset = await platform.PostAsync($"/admin/v1/accounts/{account}/users/{userId}/reset-mfa", null);

        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        Assert.Equal("/", BrowserSession.Location((await PasswordStepAsync(email)).Response).OriginalString);
    }

    [GeneratedRegex("<code id=\"totp-secret\">([A-Z2-7]+)</code>")]
    private static partial Regex SecretOnPage();

    [GeneratedRegex("<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")]
    private static partial Regex RecoveryCodeOnPage();
}
