using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Migrations.SqlServer.Migrations
{
    /// <inheritdoc />
    public partial class OutboxPendingIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_Outbox_Pending",
                table: "Outbox",
                column: "Id",
                filter: "[SentAt] IS NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Outbox_Pending",
                table: "Outbox");
        }
    }
}
