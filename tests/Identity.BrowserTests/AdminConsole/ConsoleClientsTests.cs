using System.Net;
using System.Net.Http.Headers;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// Clients in the console: created with a generated secret shown once, which — copied from the page — works at the
/// token endpoint; never shown again; rotated (the old one refused, the new one works); edited with the API's
/// validation beside the fields; a stale edit refused with the difference. Account admins find no client pages (404).
/// </summary>
public sealed class ConsoleClientsTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task Clients_CreatedWithSecret_SecretFromThePageWorksAtTheTokenEndpoint_NeverShownAgain_RotationReplacesIt()
    {
        // Arrange: a platform administrator in the console.
        var platformAdmin = await SignInAsPlatformAdminAsync();

        // Act: a service client (client credentials, secret sent with Basic).
        await Page.GotoAsync(At(Regions.Identity, "/admin/clients"));
        await Page.Locator("#new-client").ClickAsync();
        await Expect(Console.Heading("Create a client")).ToBeVisibleAsync();
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "client-new");
        var clientId = "svc-" + Guid.NewGuid().ToString("n")[..10];
        await Page.GetByLabel("Client id").FillAsync(clientId);
        await Page.GetByLabel("Display name").FillAsync("Billing service");
        await Page.GetByLabel("authorization_code").UncheckAsync();
        await Page.GetByLabel("client_credentials").CheckAsync();
        await Page.GetByRole(AriaRole.Button, new() { Name = "Create client" }).ClickAsync();

        // Assert: the secret, once; it works at the token endpoint (RFC 6749 §4.4, Basic per §2.3.1).
        await Expect(Console.Heading("Client created")).ToBeVisibleAsync();
        var secret = await Page.GetByLabel($"Client secret of {clientId}").InputValueAsync();
        Assert.False(string.IsNullOrWhiteSpace(secret));
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "client-created");
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(clientId, secret)).StatusCode);

        // The client's page, the list, a reload: the secret is nowhere.
        await Page.GetByRole(AriaRole.Link, new() { Name = "Open " + clientId }).ClickAsync();
        await Expect(Page.Locator("#client-method")).ToHaveTextAsync("client_secret_basic");
        Assert.DoesNotContain(secret, await Page.ContentAsync(), StringComparison.Ordinal);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "client");
        await Page.GotoAsync(At(Regions.Identity, "/admin/clients"));
        await Expect(Page.Locator("#clients")).ToContainTextAsync(clientId);
        Assert.DoesNotContain(secret, await Page.ContentAsync(), StringComparison.Ordinal);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "clients");

        // Rotate: a new secret once; the old one refused (invalid_client), the new one works.
        await Page.GotoAsync(At(Regions.Identity, "/admin/clients/" + clientId));
        await Page.Locator("#rotate").ClickAsync();
        var rotated = await Page.GetByLabel($"Client secret of {clientId}").InputValueAsync();
        Assert.NotEqual(secret, rotated);
        var refused = await TokenAsync(clientId, secret);
        Assert.False(refused.IsSuccessStatusCode); // RFC 6749 §5.2: invalid_client
        Assert.Contains("invalid_client", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(clientId, rotated)).StatusCode);
        await Page.ReloadAsync();
        Assert.DoesNotContain(rotated, await Page.ContentAsync(), StringComparison.Ordinal);

        // Audited with the admin as actor, never with the secret.
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var adminId = await db.Users.Where(u => u.Email == platformAdmin).Select(u => u.Id).SingleAsync();
        var entries = await db.AuditEntries.Where(e => e.SubjectId == clientId).ToListAsync();
        Assert.Contains(entries, e => e.EventType == "client.created" && e.ActorId == adminId);
        Assert.Contains(entries, e => e.EventType == "client.secret_rotated" && e.ActorId == adminId);
        Assert.DoesNotContain(entries, e => (e.Details ?? "").Contains(secret, StringComparison.Ordinal) || (e.Details ?? "").Contains(rotated, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Clients_Edit_RedirectUrisValidatedBesideTheField_StaleEditShowsTheDifference_AccountAdminFindsNothing()
    {
        // Arrange: a web client made in the console; a second tab open on it.
        await SignInAsPlatformAdminAsync();
        var clientId = "web-" + Guid.NewGuid().ToString("n")[..10];
        await Page.GotoAsync(At(Regions.Identity, "/admin/clients/new"));
        await Page.GetByLabel("Client id").FillAsync(clientId);
        await Page.GetByLabel("Authentication at the token endpoint").SelectOptionAsync("none");
        await Page.GetByLabel("refresh_token").CheckAsync();
        await Page.Locator("#redirect-uris").FillAsync("https://app.example/callback");
        await Page.GetByLabel("Scopes").FillAsync("openid profile");
        await Page.GetByRole(AriaRole.Button, new() { Name = "Create client" }).ClickAsync();
        await Expect(Page.Locator("#client-method")).ToHaveTextAsync("none"); // no secret: straight to its page
        var second = await Context.NewPageAsync();
        await second.GotoAsync(At(Regions.Identity, "/admin/clients/" + clientId));

        // Act: a redirect URI with a fragment (RFC 6749 §3.1.2 forbids it).
        await Page.Locator("#redirect-uris").FillAsync("https://app.example/callback\nhttps://app.example/cb#frag");
        var invalid = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#save").ClickAsync(), r => r.Request.Method == "POST");

        // Assert: 400, the message beside the field naming the line, announced.
        Assert.Equal((int)HttpStatusCode.BadRequest, invalid.Status);
        await Expect(Page.Locator("#err-redirect-uris")).ToContainTextAsync("Line 2: An absolute http(s) URI without a fragment.");
        await Expect(Console.Alert).ToContainTextAsync("Line 2");
        await ConsoleChecks.ExpectAccessibleAsync(Page);

        // Act: a valid change in the first tab, then the second tab (read before it) saves its own.
        await Page.Locator("#redirect-uris").FillAsync("https://app.example/callback\nhttps://app.example/other");
        await Page.Locator("#save").ClickAsync();
        await Expect(Console.Notice).ToContainTextAsync("was saved");
        await second.GetByLabel("Scopes").FillAsync("openid profile email");
        var stale = await second.RunAndWaitForResponseAsync(() => second.Locator("#save").ClickAsync(), r => r.Request.Method == "POST");

        // Assert: 409, their change and the refused one shown, the form now holding the current values.
        Assert.Equal((int)HttpStatusCode.Conflict, stale.Status);
        var notice = second.Locator("#stale");
        await Expect(notice).ToContainTextAsync("https://app.example/other");
        await Expect(notice).ToContainTextAsync("Your change, not saved");
        await Expect(notice).ToContainTextAsync("email, openid, profile");
        await Expect(second.Locator("#redirect-uris")).ToHaveValueAsync("https://app.example/callback\nhttps://app.example/other");
        await ConsoleChecks.ExpectAccessibleAsync(second);

        // An account admin: no client pages at all, by any address.
        var (_, accountAdmin) = await Regions.CreateAccountUserAsync("admin");
        var other = await Regions.NewPersonAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(other, Regions.Identity, accountAdmin, Regions.UserPassword);
        await Expect(new ConsoleLayoutPage(other).Heading("Accounts")).ToBeVisibleAsync();
        await Expect(other.GetByRole(AriaRole.Link, new() { Name = "Clients" })).ToHaveCountAsync(0);
        foreach (var path in new[] { "/admin/clients", "/admin/clients/new", "/admin/clients/" + clientId, "/admin/clients/no-such-client" })
        {
            var response = await other.GotoAsync(At(Regions.Identity, path));
            Assert.Equal((int)HttpStatusCode.NotFound, response!.Status);
        }

        // Malformed values for the platform admin: a clear 400, never a 500.
        foreach (var path in new[] { "/admin/clients?after=%25%25", "/admin/clients/" + new string('x', 300) })
        {
            var response = await Page.GotoAsync(At(Regions.Identity, path));
            Assert.InRange(response!.Status, 400, 404);
        }
    }

    [Fact]
    public async Task Clients_AllowListAndRateLimitSetOnThePage_EnforcedAtTheTokenEndpoint_BadCidrBesideTheFieldNothingSaved()
    {
        // Arrange: a platform administrator in the console.
        await SignInAsPlatformAdminAsync();
        var clientId = "svc-acl-" + Guid.NewGuid().ToString("n")[..10];

        // Act: a service client created with an allow-list holding 127.0.0.1 and a limit of 2 token requests an hour.
        await StartServiceClientAsync(clientId);
        await Page.GetByLabel("IP allow-list").FillAsync("127.0.0.0/8\n::1/128");
        await Page.GetByLabel("Token requests per window").FillAsync("2");
        await Page.Locator("#rate-window").FillAsync("01:00:00");
        await Page.GetByRole(AriaRole.Button, new() { Name = "Create client" }).ClickAsync();
        var secret = await Page.GetByLabel($"Client secret of {clientId}").InputValueAsync();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 2; i++)
        {
            statuses.Add((await TokenAsync(clientId, secret)).StatusCode);
        }

        var limited = await TokenAsync(clientId, secret);

        // Assert: the third request is over the limit: 429 with Retry-After (RFC 6585 §4), RFC 6749 JSON.
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK], statuses);
        Assert.Equal((HttpStatusCode)429, limited.StatusCode);
        Assert.True(limited.Headers.RetryAfter?.Delta > TimeSpan.Zero, "Retry-After: " + limited.Headers.RetryAfter);
        Assert.Contains("temporarily_unavailable", await limited.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // Act: the client's page shows both; the allow-list is changed to exclude 127.0.0.1 and the limit removed.
        await Page.GetByRole(AriaRole.Link, new() { Name = "Open " + clientId }).ClickAsync();
        await Expect(Page.Locator("#ip-ranges")).ToHaveValueAsync("127.0.0.0/8\n::1/128");
        await Expect(Page.Locator("#rate-permits")).ToHaveValueAsync("2");
        await Expect(Page.Locator("#rate-window")).ToHaveValueAsync("01:00:00");
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await Page.Locator("#ip-ranges").FillAsync("192.0.2.0/24\n2001:db8::/32");
        await Page.Locator("#rate-permits").FillAsync("");
        await Page.Locator("#rate-window").FillAsync("");
        await Page.Locator("#save").ClickAsync();
        await Expect(Console.Notice).ToContainTextAsync("was saved");
        var fenced = await TokenAsync(clientId, secret);
        var wrongSecret = await TokenAsync(clientId, "wrong-" + secret);

        // Assert: refused as the API's tests expect (RFC 6749 §5.2 invalid_client, 401), exactly as a wrong secret.
        Assert.Equal(HttpStatusCode.Unauthorized, fenced.StatusCode);
        Assert.Contains("\"invalid_client\"", await fenced.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(await wrongSecret.Content.ReadAsStringAsync(), await fenced.Content.ReadAsStringAsync());

        // Act: a malformed range on line 2.
        await Page.Locator("#ip-ranges").FillAsync("192.0.2.0/24\n10.0.0.1");
        var invalid = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#save").ClickAsync(), r => r.Request.Method == "POST");

        // Assert: 400, the API's message beside the field naming the line, announced; nothing saved.
        Assert.Equal((int)HttpStatusCode.BadRequest, invalid.Status);
        await Expect(Page.Locator("#err-ip-ranges")).ToContainTextAsync("Line 2: Not a CIDR range");
        await Expect(Page.Locator("#ip-ranges")).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(Console.Alert).ToContainTextAsync("Line 2");
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "client-invalid-range");
        Assert.Equal(["192.0.2.0/24", "2001:db8::/32"], (await StoredClientAsync(clientId))!.AllowedIpRanges);

        // The create form too: a bad range, a limit without its window and a leeway without refresh_token, each
        // beside its field; no client made.
        var refusedId = "svc-bad-" + Guid.NewGuid().ToString("n")[..10];
        await StartServiceClientAsync(refusedId);
        await Page.GetByLabel("IP allow-list").FillAsync("10.1.0.0/8");
        await Page.GetByLabel("Token requests per window").FillAsync("5");
        await Page.GetByLabel("Refresh token reuse leeway").FillAsync("00:00:10");
        var refused = await Page.RunAndWaitForResponseAsync(
            () => Page.GetByRole(AriaRole.Button, new() { Name = "Create client" }).ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, refused.Status);
        await Expect(Page.Locator("#err-ip-ranges")).ToContainTextAsync("Line 1: Bits are set after the /8 prefix");
        await Expect(Page.Locator("#err-rate-window")).ToContainTextAsync("Required");
        await Expect(Page.Locator("#err-leeway")).ToContainTextAsync("no refresh_token grant");
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        Assert.Null(await StoredClientAsync(refusedId));

        // Permits that are not a number: 400 beside the field, never a 500.
        await Page.GetByLabel("Token requests per window").FillAsync("many");
        await Page.Locator("#rate-window").FillAsync("00:01:00");
        refused = await Page.RunAndWaitForResponseAsync(
            () => Page.GetByRole(AriaRole.Button, new() { Name = "Create client" }).ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, refused.Status);
        await Expect(Page.Locator("#err-rate-permits")).ToContainTextAsync("A whole number");
        Assert.Null(await StoredClientAsync(refusedId));
    }

    [Fact]
    public async Task Clients_DeletedAfterTypingItsId_TokensInactiveAtIntrospection_SecretRefused_DeclaredAndConsoleClientsRefused()
    {
        // Arrange: a service client made in the console, with a token for the resource server's scope.
        var platformAdmin = await SignInAsPlatformAdminAsync();
        var clientId = "svc-del-" + Guid.NewGuid().ToString("n")[..10];
        await StartServiceClientAsync(clientId);
        await Page.GetByLabel("Scopes").FillAsync(RegionsFixture.ResourceScope);
        await Page.GetByRole(AriaRole.Button, new() { Name = "Create client" }).ClickAsync();
        var secret = await Page.GetByLabel($"Client secret of {clientId}").InputValueAsync();
        var issued = await TokenAsync(clientId, secret, RegionsFixture.ResourceScope);
        Assert.Equal(HttpStatusCode.OK, issued.StatusCode);
        var accessToken = System.Text.Json.JsonDocument.Parse(await issued.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString()!;
        Assert.True(await IntrospectAsync(accessToken));

        // Act: the client's page, Delete, a wrong confirmation first.
        await Page.GetByRole(AriaRole.Link, new() { Name = "Open " + clientId }).ClickAsync();
        await Page.Locator("#delete-client").ClickAsync();
        await Expect(Console.Heading("Delete " + clientId)).ToBeVisibleAsync();
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "client-delete");
        await Page.Locator("#confirmation").FillAsync(clientId + "x");
        var mismatch = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#delete").ClickAsync(), r => r.Request.Method == "POST");

        // Assert: 400, the message beside the field, nothing deleted.
        Assert.Equal((int)HttpStatusCode.BadRequest, mismatch.Status);
        await Expect(Page.Locator("#err-confirmation")).ToContainTextAsync("Type the client id exactly");
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        Assert.NotNull(await StoredClientAsync(clientId));

        // The form without its anti-forgery token: 400, nothing deleted.
        var unsigned = Page.APIRequest.CreateFormData();
        unsigned.Set("Confirmation", clientId);
        var forged = await Page.APIRequest.PostAsync(At(Regions.Identity, $"/admin/clients/{clientId}/delete"), new() { Form = unsigned, MaxRedirects = 0 });
        Assert.Equal((int)HttpStatusCode.BadRequest, forged.Status);
        Assert.NotNull(await StoredClientAsync(clientId));

        // Act: the id typed as shown.
        await Page.Locator("#confirmation").FillAsync(clientId);
        await Page.Locator("#delete").ClickAsync();

        // Assert: back at the list with a notice; gone; audited with the admin as actor; its token inactive at
        // introspection (RFC 7662 §2.2) and its secret refused at the token endpoint (RFC 6749 §5.2 invalid_client).
        await Expect(Console.Notice).ToContainTextAsync($"The client {clientId} was deleted");
        await Expect(Page.Locator("#clients")).Not.ToContainTextAsync(clientId);
        Assert.Null(await StoredClientAsync(clientId));
        Assert.False(await IntrospectAsync(accessToken));
        var refused = await TokenAsync(clientId, secret, RegionsFixture.ResourceScope);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("\"invalid_client\"", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await using (var scope = Regions.IdentityServices.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var adminId = await db.Users.Where(u => u.Email == platformAdmin).Select(u => u.Id).SingleAsync();
            Assert.True(await db.AuditEntries.AnyAsync(e => e.SubjectId == clientId && e.EventType == "client.deleted" && e.ActorId == adminId));
        }

        // The console's own client and a declared one: no delete link, no form; a post anyway (with a valid
        // anti-forgery token, as a forged page would send) is refused 409 and the client stays.
        foreach (var (kept, reason) in new[] { ("identity-console", "admin console's own client"), (RegionsFixture.ResourceServerId, "declared in configuration") })
        {
            await Page.GotoAsync(At(Regions.Identity, "/admin/clients/" + kept));
            await Expect(Page.Locator("#undeletable")).ToContainTextAsync(reason);
            await Expect(Page.Locator("#delete-client")).ToHaveCountAsync(0);
            await Page.GotoAsync(At(Regions.Identity, $"/admin/clients/{kept}/delete"));
            await Expect(Page.Locator("#undeletable")).ToContainTextAsync(reason);
            await Expect(Page.Locator("#confirmation")).ToHaveCountAsync(0);
            await ConsoleChecks.ExpectAccessibleAsync(Page);
            var token = await Page.Locator("input[name=__RequestVerificationToken]").First.InputValueAsync();
            var form = Page.APIRequest.CreateFormData();
            form.Set("Confirmation", kept);
            form.Set("__RequestVerificationToken", token);
            var attempt = await Page.APIRequest.PostAsync(At(Regions.Identity, $"/admin/clients/{kept}/delete"), new() { Form = form, MaxRedirects = 0 });
            Assert.Equal((int)HttpStatusCode.Conflict, attempt.Status);
            Assert.Contains(reason, WebUtility.HtmlDecode(await attempt.TextAsync()), StringComparison.Ordinal);
            Assert.NotNull(await StoredClientAsync(kept));
        }

        // Unknown or malformed ids: 404, never a 500.
        foreach (var path in new[] { "/admin/clients/no-such-client/delete", "/admin/clients/" + new string('x', 300) + "/delete" })
        {
            var response = await Page.GotoAsync(At(Regions.Identity, path));
            Assert.Equal((int)HttpStatusCode.NotFound, response!.Status);
        }
    }

    /// <summary>Whether the resource server (the token's audience) finds the token active at introspection (RFC 7662).</summary>
    private async Task<bool> IntrospectAsync(string token)
    {
        using var http = new HttpClient { BaseAddress = Regions.Identity };
        var response = await http.PostAsync("/connect/introspect", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = token, ["client_id"] = RegionsFixture.ResourceServerId, ["client_secret"] = Regions.ResourceServerSecret,
        }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("active").GetBoolean();
    }

    /// <summary>A platform administrator signed in to the console (the second factor enrolled on the way).</summary>
    private async Task<string> SignInAsPlatformAdminAsync()
    {
        var platformAdmin = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, platformAdmin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        return platformAdmin;
    }

    /// <summary>The create form, filled for a service client (client credentials) with <paramref name="clientId"/>; not yet sent.</summary>
    private async Task StartServiceClientAsync(string clientId)
    {
        await Page.GotoAsync(At(Regions.Identity, "/admin/clients/new"));
        await Page.GetByLabel("Client id").FillAsync(clientId);
        await Page.GetByLabel("authorization_code").UncheckAsync();
        await Page.GetByLabel("client_credentials").CheckAsync();
    }

    /// <summary>The client as the admin API would show it now, read through the rulebook; null when there is none.</summary>
    private async Task<Identity.Server.Admin.ClientView?> StoredClientAsync(string clientId)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var operations = scope.ServiceProvider.GetRequiredService<Identity.Server.Clients.ClientOperations>();
        return await operations.FindAsync(clientId, CancellationToken.None) is { } application
            ? await operations.ViewAsync(application, CancellationToken.None)
            : null;
    }

    private async Task<HttpResponseMessage> TokenAsync(string clientId, string secret, string? scope = null)
    {
        using var http = new HttpClient { BaseAddress = Regions.Identity };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token")
        {
            Content = new FormUrlEncodedContent(scope is null
                ? [new("grant_type", "client_credentials")]
                : [new("grant_type", "client_credentials"), new("scope", scope)]),
        };
        // RFC 6749 §2.3.1: the id and secret form-encoded, then Basic.
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(
            Uri.EscapeDataString(clientId) + ":" + Uri.EscapeDataString(secret))));
        var response = await http.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }
}
