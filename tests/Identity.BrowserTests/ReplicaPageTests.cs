using Identity.BrowserTests.Infrastructure;
using Identity.Contracts;
using Identity.Region.Replica;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests;

/// <summary>The sample's <c>/replica</c> page: the region's users as its replica holds them, and the resync button.</summary>
public sealed class ReplicaPageTests(RegionsFixture regions) : BrowserTest(regions)
{
    [Fact]
    public async Task ReplicaPage_SignedIn_ListsTheReplicatedUsers()
    {
        // Arrange: a user delivered to eu's replica as an event would be.
        var email = $"grace-{Guid.NewGuid():n}@example.test";
        await using (var scope = Regions.EuServices.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<ReplicaWriter>().ApplyAsync(new UserChanged
            {
                UserId = Guid.NewGuid().ToString(),
                AccountId = Guid.NewGuid(),
                Email = email,
                DisplayName = "Grace Hopper",
                Role = "admin",
                Status = UserStatuses.Active,
                MfaEnrolled = true,
                Version = 4,
                ChangedAt = DateTimeOffset.UtcNow,
            });
        }

        await SignInAtAsync(Regions.Eu, "eu");

        // Act
        await Page.GotoAsync(At(Regions.Eu, "/replica"));

        // Assert
        await Expect(Page.GetByRole(AriaRole.Heading, new() { Name = "Replica of region eu" })).ToBeVisibleAsync();
        var cells = Page.Locator("#replica tbody tr", new() { HasText = email }).Locator("td");
        await Expect(cells).ToHaveTextAsync([email, "Grace Hopper", "admin", "active", "4"]);
    }

    [Fact]
    public async Task ResyncNow_IdentityRefusesTheSyncToken_SaysItFailed()
    {
        // Arrange: the test clients have no client_credentials grant, so Identity refuses the sync token.
        await SignInAtAsync(Regions.Eu, "eu");
        await Page.GotoAsync(At(Regions.Eu, "/replica"));

        // Act
        await Page.GetByRole(AriaRole.Button, new() { Name = "Resync now", Exact = true }).ClickAsync();

        // Assert
        await Expect(Page).ToHaveURLAsync(At(Regions.Eu, "/replica?resync=failed"));
        await Expect(Page.GetByRole(AriaRole.Alert)).ToContainTextAsync("Resync failed");
    }

    [Fact]
    public async Task ReplicaPage_NotSignedIn_GoesToSignIn()
    {
        await Page.GotoAsync(At(Regions.Eu, "/replica"));

        await ExpectLoginPageAsync();
    }
}
