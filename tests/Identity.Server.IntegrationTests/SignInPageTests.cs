using System.Net;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Server.IntegrationTests;

/// <summary>The sign-in page: accessible markup, security headers, generic failures, no open redirect.</summary>
public sealed class SignInPageTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    [Fact]
    public async Task LoginPage_Always_HasLabelledAutocompleteInputsAndStrictHeaders()
    {
        var response = await fixture.Client.GetAsync("/Account/Login");

        var html = await ResponseAssert.HtmlAsync(response, HttpStatusCode.OK);
        Assert.Matches("<label[^>]*for=\"Input_Email\"[^>]*>Email</label>", html);
        Assert.Matches("<label[^>]*for=\"Input_Password\"[^>]*>Password</label>", html);
        Assert.Matches("<input[^>]*autocomplete=\"username\"[^>]*id=\"Input_Email\"|<input[^>]*id=\"Input_Email\"[^>]*autocomplete=\"username\"", html);
        Assert.Matches("autocomplete=\"current-password\"", html);
        Assert.Contains("__RequestVerificationToken", html, StringComparison.Ordinal);

        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
        Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
    }

    [Theory]
    [InlineData(ServerFixture<SqliteTestDatabase>.UserEmail, "wrong-password-123456")]
    [InlineData("nobody@example.test", "wrong-password-123456")]
    public async Task WrongCredentials_ShowSameGenericError(string email, string password)
    {
        var browser = new BrowserSession(fixture.Server);

        var response = await browser.SignInAsync("/Account/Login", email, password);

        var html = await ResponseAssert.HtmlAsync(response, HttpStatusCode.OK);
        Assert.Contains("Invalid email or password.", html, StringComparison.Ordinal);
        Assert.DoesNotContain("not found", html, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task LoginPost_WithoutAntiforgeryToken_Refused()
    {
        var response = await fixture.Client.PostAsync("/Account/Login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Input.Email"] = ServerFixture<SqliteTestDatabase>.UserEmail,
            ["Input.Password"] = fixture.UserPassword,
        }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var cookies = response.Headers.TryGetValues("Set-Cookie", out var values) ? values : [];
        Assert.DoesNotContain(cookies, c => c.StartsWith("identity.session", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("https://evil.example/")]
    [InlineData("//evil.example/")]
    [InlineData("/\\evil.example/")]
    [InlineData("%2F%2Fevil.example%2F")]
    [InlineData("http:evil.example")]
    [InlineData("\\\\evil.example")]
    public async Task LoginReturnUrl_NotLocal_RedirectsHomeInstead(string returnUrl)
    {
        var browser = new BrowserSession(fixture.Server);

        var response = await browser.SignInAsync("/Account/Login?ReturnUrl=" + Uri.EscapeDataString(Uri.UnescapeDataString(returnUrl)),
            ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", BrowserSession.Location(response).OriginalString);
    }

    [Fact]
    public async Task LoginReturnUrl_Local_IsFollowed()
    {
        var browser = new BrowserSession(fixture.Server);

        var response = await browser.SignInAsync("/Account/Login?ReturnUrl=%2Fconnect%2Fauthorize%3Fx%3D1",
            ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);

        Assert.Equal("/connect/authorize?x=1", BrowserSession.Location(response).OriginalString);
    }

    [Theory]
    [InlineData("%2Fcaf%C3%A9", "/caf%C3%A9")]
    [InlineData("%2Fcaf%C3%A9%3Fq%3D%F0%9F%94%91%20x", "/caf%C3%A9?q=%F0%9F%94%91%20x")]
    [InlineData("%2Fcaf%25C3%25A9", "/caf%C3%A9")] // already encoded: followed as it is
    public async Task LoginReturnUrl_LocalWithNonAscii_FollowedEncodedWithASession(string returnUrl, string expected)
    {
        var browser = new BrowserSession(fixture.Server);

        var response = await browser.SignInAsync("/Account/Login?ReturnUrl=" + returnUrl,
            ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal(expected, BrowserSession.Location(response).OriginalString);
        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("identity.session", StringComparison.Ordinal));
    }
}
