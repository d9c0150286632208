using System.Net;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Account;

/// <summary>
/// Invitations over HTTP: the admin API invites (and emails, with a mail server), the link's page sets a password under
/// the account's rules and signs the person in; the link works once, expires, and a re-send voids the previous one.
/// </summary>
public sealed class InvitationTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>, IAsyncLifetime
{
    private const string Password = "Correct-Horse-Battery-9";
    private readonly TestSmtpServer _smtp = new TestSmtpServer().Start();
    private IdentityServerHost _server = null!;
    private HttpClient _platform = null!;
    private Guid _account;

    public async Task InitializeAsync()
    {
        _server = fixture.StartServer(s => _smtp.AddTo(s));
        _server.Start();
        _platform = await fixture.PlatformAdminAsync();
        _account = (await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", """{"name":"Invite Co"}"""),
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _smtp.DisposeAsync();
    }

    [Fact]
    public async Task Invite_EmailedLink_PolicyRefusesThenAcceptsSignedInOnceOnly()
    {
        var email = NewEmail();
        var admin = AdminAt(_server);
        var created = await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{_account}/users",
            $$"""{"email":"{{email}}","role":"member","sendEmail":true}"""), HttpStatusCode.Created);

        var message = await _smtp.WaitForAsync(email);
        var link = TestSmtpServer.LinkIn(message, "/Account/Invitation");
        Assert.Equal(created.GetProperty("invitationToken").GetString(), BrowserSession.Query(link)["token"]);
        Assert.Equal("You are invited · Contoso Cloud", message.Subject);
        Assert.Contains("Invite Co", message.TextBody, StringComparison.Ordinal);
        var browser = new BrowserSession(_server);
        var weak = await SetPasswordAsync(browser, link, "short-pw");
        Assert.Contains("at least 12 characters", weak, StringComparison.Ordinal);
        var accepted = await SetPasswordAsync(browser, link, Password);

        Assert.Equal("/", accepted);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/Account/Password")).StatusCode); // signed in
        var again = await ResponseAssert.HtmlAsync(await new BrowserSession(_server).GetAsync(link.PathAndQuery), HttpStatusCode.OK);
        Assert.Contains("This invitation cannot be used", again, StringComparison.Ordinal);
        var user = await ResponseAssert.StatusAsync(await admin.GetAsync($"/admin/v1/accounts/{_account}/users/{created.GetProperty("user").GetProperty("id").GetString()}"),
            HttpStatusCode.OK);
        Assert.True(user.GetProperty("emailVerified").GetBoolean());
        Assert.Equal(HttpStatusCode.Redirect, (await new BrowserSession(_server).SignInAsync("/Account/Login", email, Password)).StatusCode);
    }

    [Fact]
    public async Task ResendInvitation_PreviousLinkVoidNewOneWorks_AcceptedInvitationConflict()
    {
        var email = NewEmail();
        var admin = AdminAt(_server);
        var created = await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{_account}/users",
            $$"""{"email":"{{email}}","role":"member"}"""), HttpStatusCode.Created);
        var userUrl = $"/admin/v1/accounts/{_account}/users/{created.GetProperty("user").GetProperty("id").GetString()}";
        var first = created.GetProperty("invitationToken").GetString()!;

        var resent = await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, userUrl + "/invitation", """{"sendEmail":true}"""), HttpStatusCode.OK);

        var second = resent.GetProperty("invitationToken").GetString()!;
        Assert.NotEqual(first, second);
        Assert.Equal(second, BrowserSession.Query(TestSmtpServer.LinkIn(await _smtp.WaitForAsync(email), "/Account/Invitation"))["token"]);
        var browser = new BrowserSession(_server);
        Assert.Contains("This invitation cannot be used", await SetPasswordAsync(browser, Link(first), Password), StringComparison.Ordinal);
        Assert.Equal("/", await SetPasswordAsync(browser, Link(second), Password));
        var conflict = await admin.SendJsonAsync(HttpMethod.Post, userUrl + "/invitation", "{}");
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        await using var scope = _server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        Assert.Equal(["user.created", "user.invitation_sent", "user.invitation_accepted"],
            await db.AuditEntries.Where(a => a.SubjectId == created.GetProperty("user").GetProperty("id").GetString()).OrderBy(a => a.Id).Select(a => a.EventType).ToListAsync());
    }

    [Fact]
    public async Task Invitation_ExpiredOrUnknownLink_ClearPageNever500()
    {
        var email = NewEmail();
        var created = await ResponseAssert.StatusAsync(await _platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{_account}/users",
            $$"""{"email":"{{email}}","role":"member"}"""), HttpStatusCode.Created);
        await using (var scope = _server.Services.CreateAsyncScope())
        {
            var userId = created.GetProperty("user").GetProperty("id").GetString();
            await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().UserLinks.Where(l => l.UserId == userId)
                .ExecuteUpdateAsync(l => l.SetProperty(x => x.ExpiresAt, DateTimeOffset.UtcNow.AddSeconds(-1)));
        }

        var browser = new BrowserSession(_server);
        foreach (var url in new[] { Link(created.GetProperty("invitationToken").GetString()!).PathAndQuery, "/Account/Invitation",
                     "/Account/Invitation?token=%00%FF", "/Account/Invitation?token=" + new string('a', 5000) })
        {
            var page = await ResponseAssert.HtmlAsync(await browser.GetAsync(url), HttpStatusCode.OK);
            Assert.Contains("This invitation cannot be used", page, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Invite_SendEmailWithoutMailServer_400NamingTheField()
    {
        var response = await _platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{_account}/users",
            $$"""{"email":"{{NewEmail()}}","role":"member","sendEmail":true}""");

        var problem = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.True(problem.GetProperty("errors").TryGetProperty("sendEmail", out _));
    }

    private static string NewEmail() => $"invited-{Guid.NewGuid():n}@example.test";

    private static Uri Link(string token) => new($"{ServerFixture<SqliteTestDatabase>.Issuer}Account/Invitation?token={Uri.EscapeDataString(token)}");

    /// <summary>The platform admin's token, on a client of <paramref name="server"/>.</summary>
    private HttpClient AdminAt(IdentityServerHost server)
    {
        var client = server.CreateClient();
        client.DefaultRequestHeaders.Authorization = _platform.DefaultRequestHeaders.Authorization;
        return client;
    }

    /// <summary>Posts the invitation form of <paramref name="link"/>; returns where it redirected, or the page shown.</summary>
    private static async Task<string> SetPasswordAsync(BrowserSession browser, Uri link, string password)
    {
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK);
        if (!page.Contains("Choose the password", StringComparison.Ordinal))
        {
            return page;
        }

        var response = await browser.SubmitAsync("/Account/Invitation", page,
            new Dictionary<string, string> { ["Input.NewPassword"] = password, ["Input.ConfirmPassword"] = password });
        return response.StatusCode == HttpStatusCode.Redirect ? BrowserSession.Location(response).OriginalString : await response.Content.ReadAsStringAsync();
    }
}
