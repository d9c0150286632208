using System.Net;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests.AdminConsole;

/// <summary>
/// The outbox in the console (platform administrators): the backlog per region, parked rows 50 a page, a row and a
/// region's rows re-queued through the admin API's operation and audited with the admin as actor. Account admins find
/// no outbox page (404); a malformed row id, page link or form is a 400/404 page, never a 500.
/// </summary>
public sealed class ConsoleOutboxTests(RegionsFixture regions) : BrowserTest(regions)
{
    private ConsoleLayoutPage Console => new(Page);

    [Fact]
    public async Task Outbox_ParkedRowsListedAndPaged_RequeuedByRowAndByRegion_GoneFromTheListAndAudited()
    {
        // Arrange: 51 rows of one region parked as the dispatcher parks them (no broker in this world); a platform admin.
        var region = "pk-" + Guid.NewGuid().ToString("n")[..8];
        var ids = await ParkRowsAsync(region, 51);
        var admin = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();

        // Act: the outbox from the navigation.
        await Console.Navigation.GetByRole(AriaRole.Link, new() { Name = "Outbox" }).ClickAsync();

        // Assert: the region's parked count, the first 50 rows (oldest first), the 51st on the next page.
        await Expect(Console.Heading("Outbox")).ToBeVisibleAsync();
        await Expect(Waiting(region)).ToHaveTextAsync("0");
        await Expect(ParkedIn(region)).ToHaveTextAsync("51");
        await Expect(Page.Locator($"#parked-{ids[0]}")).ToContainTextAsync("attempts_exhausted");
        await Expect(Page.Locator($"#parked-{ids[0]}")).ToContainTextAsync("TimeoutException: no confirmation");
        await Expect(Page.Locator($"#parked-{ids[50]}")).ToHaveCountAsync(0);
        await ConsoleChecks.ExpectAccessibleAsync(Page);
        await ConsoleWorld.ScreenshotAsync(Page, "outbox");
        await Page.GetByRole(AriaRole.Link, new() { Name = "Next page" }).ClickAsync();
        await Expect(Page.Locator($"#parked-{ids[50]}")).ToBeVisibleAsync();
        await Expect(Page.Locator($"#parked-{ids[0]}")).ToHaveCountAsync(0);
        await Page.GetByRole(AriaRole.Link, new() { Name = "First page" }).ClickAsync();

        // Act: re-queue the oldest row by its button.
        await Page.GetByRole(AriaRole.Button, new() { Name = $"Re-queue row {ids[0]}", Exact = true }).ClickAsync();

        // Assert: said so, gone from the parked list, pending again, audited with the admin as actor.
        await Expect(Console.Notice).ToContainTextAsync($"Row {ids[0]}");
        await Expect(Page.Locator($"#parked-{ids[0]}")).ToHaveCountAsync(0);
        await Expect(Waiting(region)).ToHaveTextAsync("1");
        await Expect(ParkedIn(region)).ToHaveTextAsync("50");
        var adminId = await UserIdAsync(admin);
        var row = await RowAsync(ids[0]);
        Assert.Null(row.ParkedAt);
        Assert.Equal(0, row.Attempts);
        Assert.True(await AuditedAsync("outbox.requeued", ids[0].ToString(System.Globalization.CultureInfo.InvariantCulture), adminId));

        // Act: the region's remaining 50 at once.
        await Page.GetByRole(AriaRole.Button, new() { Name = $"Re-queue all parked rows of {region}", Exact = true }).ClickAsync();

        // Assert: none of the region's rows parked any more; one audit entry naming the region.
        await Expect(Console.Notice).ToContainTextAsync($"50 parked rows of {region} pending again");
        await Expect(Page.Locator($"#parked-{ids[50]}")).ToHaveCountAsync(0);
        await Expect(Waiting(region)).ToHaveTextAsync("51");
        await Expect(ParkedIn(region)).ToHaveTextAsync("0");
        Assert.Equal(0, await ParkedCountAsync(region));
        Assert.True(await AuditedAsync("outbox.requeued_region", region, adminId));
        await ConsoleChecks.ExpectAccessibleAsync(Page);
    }

    [Fact]
    public async Task Outbox_MalformedRowIdsPageLinksAndForms_400Or404Pages_AccountAdminFindsNoOutbox()
    {
        // Arrange: one parked row; a platform admin on the outbox page.
        var region = "pk-" + Guid.NewGuid().ToString("n")[..8];
        var id = (await ParkRowsAsync(region, 1))[0];
        var admin = await Regions.CreatePlatformAdminAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(Page, Regions.Identity, admin, Regions.UserPassword);
        await Expect(Console.Heading("Accounts")).ToBeVisibleAsync();
        var outbox = At(Regions.Identity, "/admin/outbox");
        var button = Page.Locator($"#requeue-{id}");
        var idField = Page.Locator($"#parked-{id} input[name=id]");

        // A row id that is not a number, or names no row: the page says so (400, 404); nothing re-queued.
        foreach (var (value, status, text) in new[]
        {
            ("12x' or 1=1", HttpStatusCode.BadRequest, "positive whole number"),
            ("-5", HttpStatusCode.BadRequest, "positive whole number"),
            ("99999999999999999999", HttpStatusCode.BadRequest, "positive whole number"),
            ("9000000000000", HttpStatusCode.NotFound, "no outbox row with this id"),
        })
        {
            await Page.GotoAsync(outbox);
            await idField.EvaluateAsync("(e, v) => e.value = v", value);
            var refused = await Page.RunAndWaitForResponseAsync(() => button.ClickAsync(), r => r.Request.Method == "POST");
            Assert.Equal((int)status, refused.Status);
            await Expect(Console.Alert).ToContainTextAsync(text);
        }

        await ConsoleChecks.ExpectAccessibleAsync(Page);
        Assert.Equal(1, await ParkedCountAsync(region));

        // The region form with an empty region: 400 naming what is missing.
        await Page.GotoAsync(outbox);
        await Page.Locator($"#region-{region} input[name=region]").EvaluateAsync("e => e.value = ''");
        var noRegion = await Page.RunAndWaitForResponseAsync(() => Page.Locator($"#requeue-region-{region}").ClickAsync(), r => r.Request.Method == "POST");
        Assert.Equal((int)HttpStatusCode.BadRequest, noRegion.Status);
        await Expect(Console.Alert).ToContainTextAsync("Name the region");

        // The row's form without its anti-forgery token, or with a forged one: 400, the row still parked.
        foreach (var token in new string?[] { null, "CfDJ8forged-token-value" })
        {
            var form = Page.APIRequest.CreateFormData();
            form.Set("id", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (token is not null)
            {
                form.Set("__RequestVerificationToken", token);
            }

            var forged = await Page.APIRequest.PostAsync(outbox + "?handler=Requeue", new() { Form = form, MaxRedirects = 0 });
            Assert.Equal((int)HttpStatusCode.BadRequest, forged.Status);
            Assert.Contains("Request refused", await forged.TextAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(1, await ParkedCountAsync(region));

        // Malformed page links: 400 with the way back, never a 500.
        foreach (var after in new[] { "-1", "abc", "0", "1e5", "99999999999999999999" })
        {
            var response = await Page.GotoAsync(outbox + "?after=" + Uri.EscapeDataString(after));
            Assert.Equal((int)HttpStatusCode.BadRequest, response!.Status);
            await Expect(Console.Alert).ToContainTextAsync("start again from the first page");
        }

        // An account admin: no outbox in the navigation, 404 at its address.
        var (_, accountAdmin) = await Regions.CreateAccountUserAsync("admin");
        var other = await Regions.NewPersonAsync();
        await ConsoleWorld.SignInToConsoleEnrollingAsync(other, Regions.Identity, accountAdmin, Regions.UserPassword);
        await Expect(new ConsoleLayoutPage(other).Heading("Accounts")).ToBeVisibleAsync();
        await Expect(new ConsoleLayoutPage(other).Navigation.GetByRole(AriaRole.Link, new() { Name = "Outbox" })).ToHaveCountAsync(0);
        var hidden = await other.GotoAsync(outbox);
        Assert.Equal((int)HttpStatusCode.NotFound, hidden!.Status);
        await Expect(new ConsoleLayoutPage(other).Heading("Not found")).ToBeVisibleAsync();
        Assert.Equal(1, await ParkedCountAsync(region));
    }

    /// <summary>The backlog table's cells of a region: waiting rows, parked rows.</summary>
    private ILocator Waiting(string region) => Page.Locator($"#region-{region} td").Nth(0);

    private ILocator ParkedIn(string region) => Page.Locator($"#region-{region} td").Nth(2);

    /// <summary>Rows as the dispatcher parks them after its attempts (a test arrangement: no broker here), oldest first.</summary>
    private async Task<List<long>> ParkRowsAsync(string region, int count)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var rows = Enumerable.Range(0, count).Select(i => new OutboxMessage
        {
            Region = region, MessageType = "UserChanged", Payload = "{}", UserId = "user-" + i, CreatedAt = DateTimeOffset.UtcNow.AddMinutes(-10),
            ParkedAt = DateTimeOffset.UtcNow, ParkedReason = ParkReasons.AttemptsExhausted, Attempts = 5, LastError = "TimeoutException: no confirmation",
        }).ToList();
        db.Outbox.AddRange(rows);
        await db.SaveChangesAsync();
        return [.. rows.Select(r => r.Id).Order()];
    }

    private async Task<OutboxMessage> RowAsync(long id)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Outbox.AsNoTracking().SingleAsync(m => m.Id == id);
    }

    private async Task<int> ParkedCountAsync(string region)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Outbox.CountAsync(m => m.Region == region && m.ParkedAt != null);
    }

    private async Task<string> UserIdAsync(string email)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync();
    }

    private async Task<bool> AuditedAsync(string type, string subject, string actorId)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().AuditEntries
            .AnyAsync(e => e.EventType == type && e.SubjectId == subject && e.ActorId == actorId);
    }
}
