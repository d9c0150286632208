using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Account;

/// <summary>
/// Email verification over HTTP, with the emails read from a real SMTP server: a user created through the admin API is
/// sent a link; <c>email_verified</c> in the ID token and userinfo turns true only once the link's page is confirmed;
/// a change of a verified address keeps the old one (which is told) until the new one is proven; the link works once,
/// expires, proves only the address and user it was sent for, and of 30 uses at once exactly one succeeds.
/// </summary>
public abstract class EmailVerificationTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>, IAsyncLifetime
    where TDatabase : TestDatabase, new()
{
    private const string Password = "Correct-Horse-Battery-9";
    private const string Confirmed = "Your address is confirmed";
    private const string Unusable = "This link cannot be used";
    private static readonly string Redirect = ServerFixture<TDatabase>.EuApp + "/signin-oidc";
    private readonly TestSmtpServer _smtp = new TestSmtpServer().Start();
    private IdentityServerHost _server = null!;
    private HttpClient _admin = null!;
    private Guid _account;

    public async Task InitializeAsync()
    {
        _server = fixture.StartServer(s => _smtp.AddTo(s));
        _server.Start();
        var platform = await fixture.PlatformAdminAsync();
        _admin = _server.CreateClient();
        _admin.DefaultRequestHeaders.Authorization = platform.DefaultRequestHeaders.Authorization;
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, "/admin/v1/regions/eu", """{"displayName":"Europe"}"""), HttpStatusCode.OK);
        _account = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts",
            """{"name":"Verify Co","regions":["eu"]}"""), HttpStatusCode.Created)).GetProperty("id").GetGuid();
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _smtp.DisposeAsync();
    }

    [Fact]
    public async Task CreateUser_LinkFromTheEmailConfirmed_EmailVerifiedFalseThenTrueInIdTokenAndUserinfo()
    {
        // Arrange: a user created through the admin API with a password; the email with the link arrives.
        var (email, userUrl) = await CreateUserAsync();
        var message = await _smtp.WaitForAsync(email);
        Assert.Equal("Confirm your email address · Contoso Cloud", message.Subject);
        Assert.Contains("Verify Co", message.TextBody, StringComparison.Ordinal);
        var link = TestSmtpServer.LinkIn(message, "/Account/VerifyEmail");
        var before = await TokensAsync(email);

        // Act: the link is opened (nothing changes yet: mail scanners open links too), then confirmed.
        var browser = new BrowserSession(_server);
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK);
        Assert.Contains(email, page, StringComparison.Ordinal);
        var opened = await ResponseAssert.StatusAsync(await _admin.GetAsync(userUrl), HttpStatusCode.OK);
        var done = await ResponseAssert.HtmlAsync(await browser.SubmitAsync("/Account/VerifyEmail", page, new Dictionary<string, string>()), HttpStatusCode.OK);

        // Assert: false before, true after, in the ID token and at userinfo; the version grew, the regions hear of it.
        Assert.Contains(Confirmed, done, StringComparison.Ordinal);
        Assert.False(opened.GetProperty("emailVerified").GetBoolean());
        Assert.Equal((email, false), (before.IdToken.GetProperty("email").GetString(), before.IdToken.GetProperty("email_verified").GetBoolean()));
        Assert.False(before.Userinfo.GetProperty("email_verified").GetBoolean());
        var after = await TokensAsync(email);
        Assert.True(after.IdToken.GetProperty("email_verified").GetBoolean());
        Assert.True(after.Userinfo.GetProperty("email_verified").GetBoolean());
        var user = await ResponseAssert.StatusAsync(await _admin.GetAsync(userUrl), HttpStatusCode.OK);
        Assert.Equal((true, opened.GetProperty("version").GetInt64() + 1), (user.GetProperty("emailVerified").GetBoolean(), user.GetProperty("version").GetInt64()));
        var snapshot = await LastUserChangedAsync(user.GetProperty("id").GetString()!);
        Assert.Equal((email, true), (snapshot.GetProperty("email").GetString(), snapshot.GetProperty("emailVerified").GetBoolean()));
        var replay = await ResponseAssert.HtmlAsync(await browser.SubmitAsync("/Account/VerifyEmail", page, new Dictionary<string, string>()), HttpStatusCode.OK);
        Assert.Contains(Unusable, replay, StringComparison.Ordinal); // single use
        Assert.Contains(Unusable, await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChangeEmail_VerifiedAddress_OldKeptAndToldUntilTheNewOneIsProven()
    {
        // Arrange: a user whose address an admin marked verified (audited).
        var (email, userUrl) = await CreateUserAsync();
        await ResponseAssert.StatusAsync(await _admin.SendJsonAsync(HttpMethod.Post, userUrl + "/verify-email", null), HttpStatusCode.OK);
        var etag = (await _admin.GetAsync(userUrl)).Headers.ETag!.Tag;
        var newEmail = NewEmail();

        // Act: the admin changes the address.
        var changed = await ResponseAssert.StatusAsync(await _admin.SendJsonAsync(HttpMethod.Patch, userUrl, $$"""{"email":"{{newEmail}}"}""", etag),
            HttpStatusCode.OK);

        // Assert: the old address stays (and signs in), verified; the new one is pending; the old one is told.
        Assert.Equal((email, true, newEmail), (changed.GetProperty("email").GetString(), changed.GetProperty("emailVerified").GetBoolean(),
            changed.GetProperty("pendingEmail").GetString()));
        var notice = await _smtp.WaitForAsync(email, where: m => m.Subject?.StartsWith("Your email address is being changed", StringComparison.Ordinal) == true);
        Assert.DoesNotContain("/Account/VerifyEmail", notice.TextBody, StringComparison.Ordinal); // the link goes to the new address only
        Assert.Equal(email, (await TokensAsync(email)).IdToken.GetProperty("email").GetString());
        Assert.Equal(HttpStatusCode.OK, (await new BrowserSession(_server).SignInAsync("/Account/Login", newEmail, Password)).StatusCode); // refused: the page again

        // Act: the new address's link is confirmed.
        var link = TestSmtpServer.LinkIn(await _smtp.WaitForAsync(newEmail), "/Account/VerifyEmail");
        Assert.Contains(Confirmed, await ConfirmAsync(new BrowserSession(_server), link), StringComparison.Ordinal);

        // Assert: the new address is the user's, verified; the old one no longer signs in; the regions get the snapshot.
        var user = await ResponseAssert.StatusAsync(await _admin.GetAsync(userUrl), HttpStatusCode.OK);
        Assert.Equal((newEmail, true, JsonValueKind.Null), (user.GetProperty("email").GetString(), user.GetProperty("emailVerified").GetBoolean(),
            user.GetProperty("pendingEmail").ValueKind));
        var tokens = await TokensAsync(newEmail);
        Assert.Equal((newEmail, true), (tokens.IdToken.GetProperty("email").GetString(), tokens.IdToken.GetProperty("email_verified").GetBoolean()));
        Assert.Equal(HttpStatusCode.OK, (await new BrowserSession(_server).SignInAsync("/Account/Login", email, Password)).StatusCode);
        var userId = user.GetProperty("id").GetString()!;
        Assert.Equal(newEmail, (await LastUserChangedAsync(userId)).GetProperty("email").GetString());
        await using var scope = _server.Services.CreateAsyncScope();
        var audit = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().AuditEntries.AsNoTracking()
            .Where(a => a.SubjectId == userId && a.EventType.StartsWith("user.email")).OrderBy(a => a.Id).Select(a => new { a.EventType, a.Details }).ToListAsync();
        Assert.Equal(["user.email_verified", "user.email_change_requested", "user.email_verified"], audit.Select(a => a.EventType));
        Assert.Contains("\"by\":\"admin\"", audit[0].Details, StringComparison.Ordinal);
        Assert.Contains("\"by\":\"link\"", audit[2].Details, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VerificationLink_TamperedExpiredMissingOrMalformed_ClearPageNever500()
    {
        var (email, _) = await CreateUserAsync();
        var link = TestSmtpServer.LinkIn(await _smtp.WaitForAsync(email), "/Account/VerifyEmail");
        var token = BrowserSession.Query(link)["token"];
        var tampered = (token[0] == 'A' ? "B" : "A") + token[1..];
        var browser = new BrowserSession(_server);
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK);

        // A forged token posted through the real form (its anti-forgery token) proves nothing.
        foreach (var forged in new[] { tampered, "", "%00%FF", new string('a', 5000), token + "x" })
        {
            var posted = await ResponseAssert.HtmlAsync(await browser.SubmitAsync("/Account/VerifyEmail", page,
                new Dictionary<string, string> { ["Token"] = forged }), HttpStatusCode.OK);
            Assert.Contains(Unusable, posted, StringComparison.Ordinal);
        }

        foreach (var url in new[] { "/Account/VerifyEmail?token=" + tampered, "/Account/VerifyEmail", "/Account/VerifyEmail?token=%00%FF",
                     "/Account/VerifyEmail?token=" + new string('a', 5000) })
        {
            Assert.Contains(Unusable, await ResponseAssert.HtmlAsync(await browser.GetAsync(url), HttpStatusCode.OK), StringComparison.Ordinal);
        }

        // Expired: the genuine link, past its lifetime.
        await using (var scope = _server.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().UserLinks.Where(l => l.Email == email)
                .ExecuteUpdateAsync(l => l.SetProperty(x => x.ExpiresAt, DateTimeOffset.UtcNow.AddSeconds(-1)));
        }

        Assert.Contains(Unusable, await ConfirmAsync(browser, link, page), StringComparison.Ordinal);
        await using var check = _server.Services.CreateAsyncScope();
        Assert.False(await check.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.Where(u => u.Email == email).Select(u => u.EmailConfirmed).SingleAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await new BrowserSession(fixture.Server).GetAsync(link.PathAndQuery)).StatusCode); // no mail server: no page
    }

    [Fact]
    public async Task VerificationLink_UsedWhileAnotherUserIsSignedIn_ProvesOnlyTheUserAndAddressItWasSentFor()
    {
        var (email, userUrl) = await CreateUserAsync();
        var (otherEmail, otherUrl) = await CreateUserAsync();
        var link = TestSmtpServer.LinkIn(await _smtp.WaitForAsync(email), "/Account/VerifyEmail");
        var other = new BrowserSession(_server);
        Assert.Equal(HttpStatusCode.Redirect, (await other.SignInAsync("/Account/Login", otherEmail, Password)).StatusCode);

        Assert.Contains(Confirmed, await ConfirmAsync(other, link), StringComparison.Ordinal);

        Assert.True((await ResponseAssert.StatusAsync(await _admin.GetAsync(userUrl), HttpStatusCode.OK)).GetProperty("emailVerified").GetBoolean());
        var otherUser = await ResponseAssert.StatusAsync(await _admin.GetAsync(otherUrl), HttpStatusCode.OK);
        Assert.Equal((otherEmail, false), (otherUser.GetProperty("email").GetString(), otherUser.GetProperty("emailVerified").GetBoolean()));
    }

    [Fact]
    public async Task VerificationLink_PendingAddressTakenByAnotherUserMeanwhile_RefusedAndTheOldAddressStays()
    {
        var (email, userUrl) = await CreateUserAsync();
        await ResponseAssert.StatusAsync(await _admin.SendJsonAsync(HttpMethod.Post, userUrl + "/verify-email", null), HttpStatusCode.OK);
        var wanted = NewEmail();
        await ResponseAssert.StatusAsync(await _admin.SendJsonAsync(HttpMethod.Patch, userUrl, $$"""{"email":"{{wanted}}"}""",
            (await _admin.GetAsync(userUrl)).Headers.ETag!.Tag), HttpStatusCode.OK);
        var link = TestSmtpServer.LinkIn(await _smtp.WaitForAsync(wanted), "/Account/VerifyEmail");
        await ResponseAssert.StatusAsync(await _admin.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{_account}/users",
            $$"""{"email":"{{wanted}}","role":"member","password":"{{Password}}"}"""), HttpStatusCode.Created); // a pending address is no one's yet

        var page = await ConfirmAsync(new BrowserSession(_server), link);

        Assert.Contains("This address now belongs to another user", page, StringComparison.Ordinal);
        var user = await ResponseAssert.StatusAsync(await _admin.GetAsync(userUrl), HttpStatusCode.OK);
        Assert.Equal((email, true), (user.GetProperty("email").GetString(), user.GetProperty("emailVerified").GetBoolean()));
    }

    [Fact]
    public async Task VerificationLink_30ConcurrentUses_ExactlyOneSucceeds()
    {
        // Arrange: 30 browsers, each with the link's page (its own anti-forgery token) open.
        var (email, userUrl) = await CreateUserAsync();
        var link = TestSmtpServer.LinkIn(await _smtp.WaitForAsync(email), "/Account/VerifyEmail");
        var forms = await Task.WhenAll(Enumerable.Range(0, 30).Select(async _ =>
        {
            var browser = new BrowserSession(_server);
            return (browser, page: await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK));
        }));

        // Act: all confirm at once.
        var responses = await Task.WhenAll(forms.Select(f => f.browser.SubmitAsync("/Account/VerifyEmail", f.page, new Dictionary<string, string>())));

        // Assert: every answer a page (never a 500); one confirmation, 29 refusals; the version grew once.
        var pages = await Task.WhenAll(responses.Select(r => ResponseAssert.HtmlAsync(r, HttpStatusCode.OK)));
        Assert.Equal((1, 29), (pages.Count(p => p.Contains(Confirmed, StringComparison.Ordinal)), pages.Count(p => p.Contains("cannot be used", StringComparison.Ordinal))));
        var user = await ResponseAssert.StatusAsync(await _admin.GetAsync(userUrl), HttpStatusCode.OK);
        Assert.Equal((true, 2L), (user.GetProperty("emailVerified").GetBoolean(), user.GetProperty("version").GetInt64()));
        await using var scope = _server.Services.CreateAsyncScope();
        var userId = user.GetProperty("id").GetString();
        Assert.Equal(1, await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().AuditEntries
            .CountAsync(a => a.SubjectId == userId && a.EventType == "user.email_verified"));
    }

    [Fact]
    public async Task AdminApi_MarkVerifiedResendAndOtherAddress_AuditedOrRefusedAsProblems()
    {
        var (email, userUrl) = await CreateUserAsync();
        var first = TestSmtpServer.LinkIn(await _smtp.WaitForAsync(email), "/Account/VerifyEmail");

        var resent = await ResponseAssert.StatusAsync(await _admin.SendJsonAsync(HttpMethod.Post, userUrl + "/verification-email", null), HttpStatusCode.OK);
        var other = await _admin.SendJsonAsync(HttpMethod.Post, userUrl + "/verify-email", $$"""{"email":"{{NewEmail()}}"}""");
        var marked = await ResponseAssert.StatusAsync(await _admin.SendJsonAsync(HttpMethod.Post, userUrl + "/verify-email", $$"""{"email":"{{email}}"}"""),
            HttpStatusCode.OK);
        var nothingLeft = await _admin.SendJsonAsync(HttpMethod.Post, userUrl + "/verification-email", null);

        Assert.False(resent.GetProperty("emailVerified").GetBoolean());
        Assert.True((await ResponseAssert.StatusAsync(other, HttpStatusCode.BadRequest)).GetProperty("errors").TryGetProperty("email", out _));
        Assert.True(marked.GetProperty("emailVerified").GetBoolean());
        await ResponseAssert.StatusAsync(nothingLeft, HttpStatusCode.Conflict);
        Assert.Contains(Unusable, await ConfirmAsync(new BrowserSession(_server), first), StringComparison.Ordinal); // voided by the re-send
        var second = await _smtp.WaitForAsync(email, where: m => m.TextBody?.Contains(first.Query, StringComparison.Ordinal) == false);
        Assert.Contains(Unusable, await ConfirmAsync(new BrowserSession(_server), TestSmtpServer.LinkIn(second, "/Account/VerifyEmail")),
            StringComparison.Ordinal); // voided: the address is verified
    }

    [Fact]
    public async Task EmailPage_SignedInPersonMovesAddress_PasswordAskedOldAddressKeptUntilConfirmed()
    {
        // Arrange: a signed-in person whose address is verified.
        var (email, userUrl) = await CreateUserAsync();
        await ResponseAssert.StatusAsync(await _admin.SendJsonAsync(HttpMethod.Post, userUrl + "/verify-email", null), HttpStatusCode.OK);
        var browser = new BrowserSession(_server);
        Assert.Equal(HttpStatusCode.Redirect, (await browser.SignInAsync("/Account/Login", email, Password)).StatusCode);
        Assert.Contains("href=\"/Account/Email\"", await ResponseAssert.HtmlAsync(await browser.GetAsync("/"), HttpStatusCode.OK), StringComparison.Ordinal);
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/Email"), HttpStatusCode.OK);
        Assert.Contains("autocomplete=\"current-password\"", page, StringComparison.Ordinal);
        var newEmail = NewEmail();

        // Act: a wrong password, a forged request without the anti-forgery token, then the right password.
        var wrong = await ResponseAssert.HtmlAsync(await browser.SubmitAsync("/Account/Email", page,
            new Dictionary<string, string> { ["Input.NewEmail"] = newEmail, ["Input.CurrentPassword"] = "not-the-password" }), HttpStatusCode.OK);
        var forged = await browser.Http.PostAsync("/Account/Email", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["Input.NewEmail"] = newEmail, ["Input.CurrentPassword"] = Password }));
        var moved = await ResponseAssert.HtmlAsync(await browser.SubmitAsync("/Account/Email", page,
            new Dictionary<string, string> { ["Input.NewEmail"] = newEmail, ["Input.CurrentPassword"] = Password }), HttpStatusCode.OK);

        // Assert: only the right password with the page's token starts the move; the old address stays and is told.
        Assert.Contains("The current password is not correct.", wrong, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Contains($"Moving to <strong>{newEmail}</strong>", moved, StringComparison.Ordinal);
        Assert.Equal(email, (await ResponseAssert.StatusAsync(await _admin.GetAsync(userUrl), HttpStatusCode.OK)).GetProperty("email").GetString());
        await _smtp.WaitForAsync(email, where: m => m.Subject?.StartsWith("Your email address is being changed", StringComparison.Ordinal) == true);
        Assert.Contains(Confirmed, await ConfirmAsync(browser, TestSmtpServer.LinkIn(await _smtp.WaitForAsync(newEmail), "/Account/VerifyEmail")),
            StringComparison.Ordinal);
        var user = await ResponseAssert.StatusAsync(await _admin.GetAsync(userUrl), HttpStatusCode.OK);
        Assert.Equal((newEmail, true), (user.GetProperty("email").GetString(), user.GetProperty("emailVerified").GetBoolean()));
        Assert.Equal(HttpStatusCode.NotFound, (await new BrowserSession(fixture.Server).GetAsync("/Account/Email")).StatusCode); // no mail server
    }

    [Fact]
    public async Task WithoutMailServer_NoLinkAddressReplacedAtOnceAdminMarksIt()
    {
        var platform = await fixture.PlatformAdminAsync(); // the fixture's own server has no Email:*
        var email = NewEmail();
        var created = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{_account}/users",
            $$"""{"email":"{{email}}","role":"member","password":"{{Password}}"}"""), HttpStatusCode.Created);
        var userUrl = $"/admin/v1/accounts/{_account}/users/{created.GetProperty("user").GetProperty("id").GetString()}";
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, userUrl + "/verify-email", null), HttpStatusCode.OK);
        var newEmail = NewEmail();

        var changed = await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Patch, userUrl, $$"""{"email":"{{newEmail}}"}""",
            (await platform.GetAsync(userUrl)).Headers.ETag!.Tag), HttpStatusCode.OK);
        var resend = await platform.SendJsonAsync(HttpMethod.Post, userUrl + "/verification-email", null);

        Assert.Equal((newEmail, false), (changed.GetProperty("email").GetString(), changed.GetProperty("emailVerified").GetBoolean()));
        Assert.True((await ResponseAssert.StatusAsync(resend, HttpStatusCode.BadRequest)).GetProperty("errors").TryGetProperty("email", out _));
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        Assert.False(await db.EmailMessages.AnyAsync(m => m.To == email || m.To == newEmail));
    }

    private static string NewEmail() => $"verify-{Guid.NewGuid():n}@example.test";

    /// <summary>A member created through the admin API with a password; its email and admin URL.</summary>
    private async Task<(string Email, string UserUrl)> CreateUserAsync()
    {
        var email = NewEmail();
        var created = await ResponseAssert.StatusAsync(await _admin.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{_account}/users",
            $$"""{"email":"{{email}}","role":"member","password":"{{Password}}"}"""), HttpStatusCode.Created);
        return (email, $"/admin/v1/accounts/{_account}/users/{created.GetProperty("user").GetProperty("id").GetString()}");
    }

    /// <summary>Opens the link's page and presses its button (when it has one); the page shown after.</summary>
    private static async Task<string> ConfirmAsync(BrowserSession browser, Uri link, string? page = null)
    {
        page ??= await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK);
        return !page.Contains("Confirm this address", StringComparison.Ordinal)
            ? page
            : await ResponseAssert.HtmlAsync(await browser.SubmitAsync("/Account/VerifyEmail", page, new Dictionary<string, string>()), HttpStatusCode.OK);
    }

    /// <summary>A sign-in at the eu app (code + PKCE, scope openid email): the ID token's claims and the userinfo answer.</summary>
    private async Task<(JsonElement IdToken, JsonElement Userinfo)> TokensAsync(string email)
    {
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await new BrowserSession(_server).AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid email")), email, Password);
        var client = _server.CreateClient();
        var tokens = await ResponseAssert.StatusAsync(await client.RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
        var idToken = JsonDocument.Parse(Base64UrlEncoder.Decode(tokens.GetProperty("id_token").GetString()!.Split('.')[1])).RootElement;
        using var userinfo = new HttpRequestMessage(HttpMethod.Get, "/connect/userinfo");
        userinfo.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        return (idToken, await ResponseAssert.StatusAsync(await client.SendAsync(userinfo), HttpStatusCode.OK));
    }

    private async Task<JsonElement> LastUserChangedAsync(string userId)
    {
        await using var scope = _server.Services.CreateAsyncScope();
        var payload = await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Outbox.AsNoTracking()
            .Where(m => m.UserId == userId && m.MessageType == "UserChanged").OrderByDescending(m => m.Id).Select(m => m.Payload).FirstAsync();
        return JsonDocument.Parse(payload).RootElement;
    }
}

public sealed class SqliteEmailVerificationTests(ServerFixture<SqliteTestDatabase> fixture) : EmailVerificationTests<SqliteTestDatabase>(fixture);

public sealed class PostgresEmailVerificationTests(ServerFixture<PostgresTestDatabase> fixture) : EmailVerificationTests<PostgresTestDatabase>(fixture);
