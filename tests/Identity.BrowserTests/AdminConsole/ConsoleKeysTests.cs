using System.Net;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// The token keys in the console (platform administrators): each key's stage, algorithm, kid and dates, the next
/// rotation; a rotation after typing a confirmation, through the admin API's operation, after which the new key is in the
/// JWKS beside the previous one, audited with the admin as actor. Account admins find no keys page (404); a wrong
/// confirmation, a made-up algorithm or a forged form changes nothing (400).
/// </summary>
public sealed class ConsoleKeysTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task Keys_RotatedFromThePage_NewKeyInTheJwksBesideThePrevious_Audited()
    {
        // Arrange: an Identity of its own (a rotation at the shared one would re-key the regional apps' sign-ins under
        // the other tests), a platform admin of it in the console.
        await using var identity = await Regions.StartIdentityAsync(TimeProvider.System);
        var admin = await Regions.CreatePlatformAdminAsync(identity.Services);
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, identity.BaseAddress, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        using var http = new HttpClient { BaseAddress = identity.BaseAddress };
        var before = await JwksKidsAsync(http);

        // Act: the keys page from the navigation.
        await Console.Navigation.GetByRole(AriaRole.Link, new() { Name = "Token keys" }).ClickAsync();

        // Assert: one active key per algorithm, each published signing key in the table, a next rotation for each.
        await Expect(Console.Heading("Token keys")).ToBeVisibleAsync();
        var active = await ActiveKidsAsync();
        Assert.Equal(["A256KW", "ES256", "RS256"], active.Keys.Order(StringComparer.Ordinal));
        Assert.Contains(active["RS256"], before);
        Assert.Contains(active["ES256"], before);
        foreach (var algorithm in active.Keys)
        {
            await Expect(Page.Locator($"#next-{algorithm}")).ToContainTextAsync(" UTC (in ");
        }

        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "keys");

        // Act: rotate the two signing keys (not the encryption key), confirmed by typing.
        await Page.GetByLabel("A256KW", new() { Exact = false }).UncheckAsync();
        await Console.Field("Type rotate to confirm").FillAsync("rotate");
        await Page.Locator("#rotate").ClickAsync();

        // Assert: new active signing keys, the previous ones now "previous" with a retirement date; the encryption key kept.
        await Expect(Console.Notice).ToContainTextAsync("Replaced the RS256, ES256 keys");
        var after = await ActiveKidsAsync();
        Assert.NotEqual(active["RS256"], after["RS256"]);
        Assert.NotEqual(active["ES256"], after["ES256"]);
        Assert.Equal(active["A256KW"], after["A256KW"]);
        await Expect(Page.Locator($"#key-{active["RS256"]} .status")).ToHaveTextAsync("previous");
        await Expect(Page.Locator($"#key-{active["RS256"]} td").Nth(4)).ToContainTextAsync(" UTC");

        // The key set relying parties read (RFC 7517 §5) publishes the new keys and still the previous ones.
        var published = await JwksKidsAsync(http);
        Assert.Contains(after["RS256"], published);
        Assert.Contains(after["ES256"], published);
        Assert.Contains(active["RS256"], published);
        Assert.Contains(active["ES256"], published);

        // Audited once, with the admin as actor and the keys replaced.
        await using var scope = identity.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var adminId = await db.Users.Where(u => u.Email == admin).Select(u => u.Id).SingleAsync();
        var entry = Assert.Single(await db.AuditEntries.Where(e => e.EventType == "keys.rotated").ToListAsync());
        Assert.Equal(adminId, entry.ActorId);
        Assert.Contains(active["RS256"], entry.Details, StringComparison.Ordinal);
        Assert.DoesNotContain(active["A256KW"], entry.Details, StringComparison.Ordinal);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
    }

    [Fact]
    public async Task Keys_WrongConfirmationMadeUpAlgorithmOrForgedForm_400AndNothingRotated_AccountAdminFindsNoKeys()
    {
        // Arrange: a platform admin of the shared Identity on the keys page (nothing here may rotate).
        var admin = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        var keys = At(Regions.Identity, "/admin/keys");
        await Page.GotoAsync(keys);
        var active = await ActiveKidsAsync();

        // A confirmation that is not "rotate": 400, the message beside the field, announced.
        await Console.Field("Type rotate to confirm").FillAsync("rotat");
        var mistyped = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#rotate").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, mistyped.Status);
        await Expect(Page.Locator("#err-confirmation")).ToContainTextAsync("Type rotate to confirm");
        await Expect(Console.Alert).ToContainTextAsync("not rotated");
        await ConsoleChecks.ExpectAccessibleAsync(Page);

        // No key chosen: 400.
        foreach (var algorithm in new[] { "RS256", "ES256", "A256KW" })
        {
            await Page.Locator($"input[name=Algorithms][value={algorithm}]").UncheckAsync();
        }

        await Console.Field("Type rotate to confirm").FillAsync("rotate");
        var none = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#rotate").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, none.Status);
        await Expect(Page.Locator("#err-algorithms")).ToContainTextAsync("at least one key");

        // An algorithm the form does not offer (HS256, a symmetric key): the operation's 400.
        await Page.Locator("input[name=Algorithms][value=RS256]").EvaluateAsync("e => { e.value = 'HS256'; e.checked = true; }");
        await Console.Field("Type rotate to confirm").FillAsync("rotate");
        var madeUp = await Page.RunAndWaitForResponseAsync(() => Page.Locator("#rotate").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, madeUp.Status);
        await Expect(Page.Locator("#err-algorithms")).ToContainTextAsync("Unknown key algorithm 'HS256'");

        // The form without its anti-forgery token, or with a forged one: 400.
        foreach (var token in new string?[] { null, "CfDJ8forged-token-value" })
        {
            var form = Page.APIRequest.CreateFormData();
            form.Set("Algorithms", "ES256");
            form.Set("Confirmation", "rotate");
            if (token is not null)
            {
                form.Set("__RequestVerificationToken", token);
            }

            var forged = await Page.APIRequest.PostAsync(keys + "?handler=Rotate", new() { Form = form, MaxRedirects = 0 });
            Assert.Equal((int)HttpStatusCode.BadRequest, forged.Status);
            Assert.Contains("Request refused", await forged.TextAsync(), StringComparison.Ordinal);
        }

        // Nothing rotated.
        await Page.GotoAsync(keys);
        Assert.Equal(active, await ActiveKidsAsync());

        // An account admin: no keys in the navigation, 404 at the address.
        var (_, accountAdmin) = await Regions.CreateAccountUserAsync("admin");
        var other = await Regions.NewPersonAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(other, Regions.Identity, accountAdmin, Regions.UserPassword);
        await Expect(new ConsoleLayoutPage(other).Heading("Accounts")).ToBeVisibleAsync();
        await Expect(new ConsoleLayoutPage(other).Navigation.GetByRole(AriaRole.Link, new() { Name = "Token keys" })).ToHaveCountAsync(0);
        var hidden = await other.GotoAsync(keys);
        Assert.Equal((int)HttpStatusCode.NotFound, hidden!.Status);
        await Expect(new ConsoleLayoutPage(other).Heading("Not found")).ToBeVisibleAsync();
    }

    /// <summary>The active key of each algorithm as the page lists it: algorithm → kid.</summary>
    private async Task<Dictionary<string, string>> ActiveKidsAsync()
    {
        var active = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var row in await Page.Locator("#keys tbody tr").AllAsync())
        {
            if (await row.Locator(".status").InnerTextAsync() == "active")
            {
                var algorithm = (await row.Locator("td").Nth(0).InnerTextAsync()).Split(' ')[0];
                active.Add(algorithm, await row.Locator("th").InnerTextAsync());
            }
        }

        return active;
    }

    private static async Task<HashSet<string>> JwksKidsAsync(HttpClient http) =>
        new JsonWebKeySet(await http.GetStringAsync("/.well-known/jwks")).Keys.Select(k => k.Kid).ToHashSet(StringComparer.Ordinal);
}
